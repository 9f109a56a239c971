// Reads and checks the app's package.json for bin/compile and bin/release, run
// with the stack's node:
//
//   node pkg.js inspect BUILD_DIR NPM_VERSION   validate, check engines, print facts
//   node pkg.js release BUILD_DIR               print the default web command (or nothing)
//
// "inspect" prints "key=value" lines (values checked against a strict pattern
// before they are printed, so the shell reading them never sees odd text) or
// one " !     problem: fix" line on stderr and exits 1. Version ranges are
// parsed by the semver module that npm itself uses (Debian ships it in
// /usr/share/nodejs), not by hand.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

function loadSemver() {
  try {
    return require('semver');
  } catch (err) {
    // npm's own copy (a stack whose semver is not a global module)
    const npmDir = path.dirname(require.resolve('npm/package.json', { paths: ['/usr/lib/node_modules', '/usr/share/nodejs'] }));
    return require(path.join(npmDir, 'node_modules', 'semver'));
  }
}

function fail(message) {
  process.stderr.write(` !     ${message}\n`);
  process.exit(1);
}

const SAFE = /^[A-Za-z0-9@^~<>=|.*+_ \/-]*$/;

function show(value) {
  return JSON.stringify(value);
}

// The position of a JSON.parse error as "line L column C" (node 18 says
// "... in JSON at position N"; newer nodes may say line and column themselves).
function where(text, message) {
  const match = /position (\d+)/.exec(message);
  if (!match) return '';
  const before = text.slice(0, Number(match[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return ` at line ${line}, column ${column}`;
}

function readPackage(buildDir) {
  const file = path.join(buildDir, 'package.json');
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read package.json (${err.code || err.message}): add a package.json to the app`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM, as npm accepts
  let pkg;
  try {
    pkg = JSON.parse(text);
  } catch (err) {
    const reason = err.message.split('\n')[0];
    fail(`package.json is not valid JSON${where(text, reason)}: ${reason}; fix the file and push again`);
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) {
    fail('package.json must be a JSON object ({"name": ..., "dependencies": {...}}): fix the file');
  }
  for (const key of ['engines', 'scripts', 'dependencies', 'devDependencies', 'optionalDependencies']) {
    const value = pkg[key];
    if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      fail(`package.json: "${key}" must be an object, not ${show(value)}: fix the file`);
    }
  }
  return pkg;
}

// engines.<tool> as a checked range string, or '' when not set.
function engineRange(semver, pkg, tool) {
  const engines = pkg.engines || {};
  if (!(tool in engines)) return '';
  const range = engines[tool];
  if (typeof range !== 'string' || semver.validRange(range) === null || !SAFE.test(range)) {
    fail(`package.json engines.${tool} ${show(range)} is not a version range: ` +
         'use one such as "18.x", ">=18" or "^18.19.0"');
  }
  return range.trim();
}

function checkEngine(semver, pkg, tool, label, version, fix) {
  const range = engineRange(semver, pkg, tool);
  if (range && !semver.satisfies(version, range)) {
    fail(`package.json engines.${tool} ${show(range)} cannot be met: this stack has ${label} ${version}; ${fix}`);
  }
  return range;
}

// packageManager ("pnpm@8.15.4", "yarn@1.22.19+sha512.abc") as [name, version].
function packageManager(semver, pkg) {
  const value = pkg.packageManager;
  if (value === undefined) return ['', ''];
  const match = typeof value === 'string' && /^(npm|yarn|pnpm)@([^+]+)(\+.*)?$/.exec(value.trim());
  if (!match || semver.valid(match[2]) === null) {
    fail(`package.json packageManager ${show(value)} is not "npm@X.Y.Z", "yarn@X.Y.Z" or "pnpm@X.Y.Z": fix it`);
  }
  return [match[1], match[2]];
}

// A digest of what decides the installed tree besides the lock file, so an
// edited dependency list never reuses node_modules built for the old one.
function depsDigest(pkg) {
  const fields = {};
  for (const key of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies',
                     'bundleDependencies', 'bundledDependencies', 'overrides', 'resolutions',
                     'pnpm', 'workspaces', 'packageManager']) {
    if (pkg[key] !== undefined) fields[key] = pkg[key];
  }
  return crypto.createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

function hasScript(pkg, name) {
  const scripts = pkg.scripts || {};
  return typeof scripts[name] === 'string' && scripts[name].trim() !== '';
}

function inspect(buildDir, npmVersion) {
  const semver = loadSemver();
  const pkg = readPackage(buildDir);
  const node = process.versions.node;
  const facts = {
    node_range: checkEngine(semver, pkg, 'node', 'Node.js', node,
      'set engines.node to a range that includes it (e.g. "18.x") or build the app from a Dockerfile'),
    npm_range: checkEngine(semver, pkg, 'npm', 'npm', npmVersion,
      'set engines.npm to a range that includes it (e.g. "9.x") or remove it'),
    yarn_range: engineRange(semver, pkg, 'yarn'),
    pnpm_range: engineRange(semver, pkg, 'pnpm'),
  };
  [facts.pm_name, facts.pm_version] = packageManager(semver, pkg);
  if (facts.pm_name === 'npm' && !semver.satisfies(npmVersion, facts.pm_version)) {
    fail(`package.json packageManager "npm@${facts.pm_version}" cannot be met: this stack has npm ${npmVersion}; ` +
         `use "npm@${npmVersion}" or remove packageManager`);
  }
  for (const name of ['build', 'heroku-prebuild', 'heroku-postbuild', 'heroku-cleanup', 'start']) {
    facts[`script_${name.replace(/-/g, '_')}`] = hasScript(pkg, name) ? '1' : '';
  }
  // the app's own install hooks run with every install, so node_modules is not
  // restored from the cache for them (they may write outside node_modules)
  facts.install_hooks = ['preinstall', 'install', 'postinstall', 'prepare']
    .some((name) => hasScript(pkg, name)) ? '1' : '';
  facts.workspaces = pkg.workspaces !== undefined ||
    fs.existsSync(path.join(buildDir, 'pnpm-workspace.yaml')) ? '1' : '';
  facts.dev_dependencies = Object.keys(pkg.devDependencies || {}).length ? '1' : '';
  facts.deps_digest = depsDigest(pkg);
  let out = '';
  for (const [key, value] of Object.entries(facts)) {
    if (!SAFE.test(value)) fail(`package.json: unexpected characters in ${key}: fix the file`);
    out += `${key}=${value}\n`;
  }
  process.stdout.write(out);
}

// The default web process, as Heroku's: "npm start" for a start script, else
// "node server.js" when server.js exists (what npm start would run), else none.
function release(buildDir) {
  let pkg = {};
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(buildDir, 'package.json'), 'utf8').replace(/^\ufeff/, ''));
  } catch (err) {
    pkg = {};
  }
  if (pkg && typeof pkg === 'object' && hasScript(pkg, 'start')) {
    process.stdout.write('npm start\n');
  } else if (fs.existsSync(path.join(buildDir, 'server.js'))) {
    process.stdout.write('node server.js\n');
  }
}

const [command, buildDir, npmVersion] = process.argv.slice(2);
if (command === 'inspect' && buildDir && npmVersion) {
  inspect(buildDir, npmVersion);
} else if (command === 'release' && buildDir) {
  release(buildDir);
} else {
  fail('usage: pkg.js inspect BUILD_DIR NPM_VERSION | release BUILD_DIR');
}
