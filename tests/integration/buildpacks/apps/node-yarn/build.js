// The build step: needs the devDependency tiny-invariant.
const invariant = require('tiny-invariant');

invariant(typeof invariant === 'function', 'tiny-invariant loaded');
require('fs').writeFileSync(`${__dirname}/built.txt`, 'built with yarn\n');
