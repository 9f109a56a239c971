// The build step: writes public/built.txt with a devDependency (tiny-invariant),
// so a build without devDependencies fails.
const fs = require('fs');
const path = require('path');
const invariant = require('tiny-invariant');

invariant(typeof invariant === 'function', 'tiny-invariant loaded');
fs.mkdirSync(path.join(__dirname, 'public'), { recursive: true });
fs.writeFileSync(path.join(__dirname, 'public', 'built.txt'),
  `built by build.js with tiny-invariant, NODE_ENV=${process.env.NODE_ENV}\n`);
console.log('wrote public/built.txt');
