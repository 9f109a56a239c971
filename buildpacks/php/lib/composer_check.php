<?php
// composer_check.php BUILD_DIR MODE_FILE: what "composer install" will need, decided
// before it runs, so a requirement this server cannot meet fails with one clear line
// instead of a stack trace or a network timeout (Packagist is not reachable here).
//
// Checks composer.json (and composer.lock if present): valid JSON; the root's "php"
// constraint against the stack's PHP; every ext-* the root, the lock's platform or a
// locked package requires against the loaded extensions; packages to install need a
// lock file, and either vendor/ committed with them or a repository in composer.json.
// Writes to MODE_FILE: "offline" (nothing to download: network disabled for composer)
// or "online" (a configured repository may be needed). Progress on stdout, errors as
// " !     " lines on stderr with exit 1. Not here: running composer (bin/compile).

declare(strict_types=1);

const PLATFORM = '/^(php(-64bit|-ipv6|-zts|-debug)?|hhvm|composer(-plugin-api|-runtime-api)?|ext-.+|lib-.+)$/i';

function fail(string ...$lines): never
{
    foreach ($lines as $line) {
        fwrite(STDERR, " !     $line\n");
    }
    exit(1);
}

function say(string $line): void
{
    echo "       $line\n";
}

/** @return array<mixed> */
function read_json(string $path, string $name): array
{
    $text = file_get_contents($path);
    if ($text === false) {
        fail("cannot read $name");
    }
    $data = json_decode($text, true);
    if (!is_array($data)) {
        $why = json_last_error_msg();
        $lint = '/usr/share/php/Seld/JsonLint/autoload.php';
        if (is_file($lint)) {
            require_once $lint;
            $err = (new Seld\JsonLint\JsonParser())->lint($text);
            if ($err !== null) {
                // "Parse error on line N:", the text and a caret, "Expected: ..."
                $lines = explode("\n", trim($err->getMessage()));
                $why = rtrim($lines[0], ':') . ': ' . end($lines);
            }
        }
        fail("$name is not valid JSON: $why", "fix $name (composer validate shows the problem)");
    }
    return $data;
}

/** @param array<mixed> $reqs @return array<string, string> */
function requirements(mixed $reqs): array
{
    $out = [];
    if (is_array($reqs)) {
        foreach ($reqs as $name => $constraint) {
            if (is_string($name) && is_string($constraint)) {
                $out[strtolower($name)] = $constraint;
            }
        }
    }
    return $out;
}

/** Extension names as Composer spells them: ext-<lowercased, spaces as dashes>. */
function loaded_extensions(): array
{
    $names = [];
    foreach (get_loaded_extensions() as $ext) {
        $names['ext-' . strtolower(str_replace(' ', '-', $ext))] = true;
    }
    return $names;
}

[$_, $build, $modeFile] = $argv + [null, null, null];
if (!is_string($build) || !is_string($modeFile)) {
    fail('usage: composer_check.php BUILD_DIR MODE_FILE');
}

$json = read_json("$build/composer.json", 'composer.json');
$lock = is_file("$build/composer.lock") ? read_json("$build/composer.lock", 'composer.lock') : null;
$root = requirements($json['require'] ?? []);

// --- the stack's PHP and extensions -----------------------------------------------------
require_once '/usr/share/php/Composer/Semver/autoload.php';
$constraints = [];
if (isset($root['php'])) {
    $constraints['composer.json'] = $root['php'];
}
$lockPlatform = requirements($lock['platform'] ?? []);
if (isset($lockPlatform['php'])) {
    $constraints['composer.lock'] = $lockPlatform['php'];
}
foreach ($constraints as $file => $constraint) {
    try {
        $ok = Composer\Semver\Semver::satisfies(PHP_VERSION, $constraint);
    } catch (UnexpectedValueException $err) {
        fail("$file: the php requirement '$constraint' is not a version constraint: " . $err->getMessage());
    }
    if (!$ok) {
        fail("$file requires PHP $constraint, but the stack has PHP " . PHP_VERSION
            . ': relax the php constraint (and run composer update) if the app runs on PHP '
            . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION);
    }
}

$packages = [];
foreach ((is_array($lock['packages'] ?? null) ? $lock['packages'] : []) as $pkg) {
    if (is_array($pkg) && is_string($pkg['name'] ?? null)) {
        $packages[$pkg['name']] = requirements($pkg['require'] ?? []);
    }
}
$wantedExt = [];
foreach (['composer.json' => $root, 'composer.lock' => $lockPlatform] + $packages as $who => $reqs) {
    foreach ($reqs as $name => $_constraint) {
        if (str_starts_with($name, 'ext-')) {
            $wantedExt[$name][] = $who;
        }
    }
}
$loaded = loaded_extensions();
foreach ($wantedExt as $ext => $who) {
    if (!isset($loaded[$ext])) {
        fail(implode(', ', array_unique($who)) . " requires the PHP extension " . substr($ext, 4)
            . ", which the stack's PHP " . PHP_VERSION . " does not have (it has: "
            . implode(' ', array_map(fn($e) => substr($e, 4), array_keys($loaded))) . ')');
    }
}

// --- packages: from the lock, out of vendor/ or a configured repository --------------------
$rootPackages = array_keys(array_filter($root, fn($n) => !preg_match(PLATFORM, (string)$n),
    ARRAY_FILTER_USE_KEY));
if ($lock === null) {
    if ($rootPackages) {
        fail('composer.json requires ' . implode(', ', $rootPackages) . ' but there is no composer.lock: '
            . "run 'composer update' and commit composer.lock (and vendor/: Packagist is not reachable from this server)");
    }
    say('composer.json requires no packages (no composer.lock)');
    file_put_contents($modeFile, "offline\n");
    exit(0);
}

$count = count($packages);
$names = implode(', ', array_slice(array_keys($packages), 0, 3)) . ($count > 3 ? ', ...' : '');
$installed = "$build/vendor/composer/installed.json";
$repositories = $json['repositories'] ?? [];
$hasRepository = is_array($repositories) && array_filter($repositories, fn($r) => is_array($r)) !== [];
if ($count === 0) {
    say('composer.lock requires no packages');
    $mode = 'offline';
} elseif (is_file($installed)) {
    say("composer.lock requires $count package(s) ($names): installing from the committed vendor/");
    $mode = $hasRepository ? 'online' : 'offline';
} elseif ($hasRepository) {
    say("composer.lock requires $count package(s) ($names): installing from the repositories in composer.json");
    $mode = 'online';
} else {
    fail("composer.lock requires $count package(s) ($names) but vendor/ is not committed and "
        . 'composer.json configures no repository (Packagist is not reachable from this server): '
        . "commit vendor/ (composer install --no-dev), or add a repository (path, artifact or your own "
        . 'Composer repository) to composer.json');
}
file_put_contents($modeFile, "$mode\n");
