// A plain http server on $PORT: "/" answers with the build's output file, the
// dependency (kleur, colours off) and whether the devDependency is installed.
const fs = require('fs');
const http = require('http');
const kleur = require('kleur');

kleur.enabled = false;

let dev = 'absent';
try {
  require.resolve('tiny-invariant');
  dev = 'present';
} catch (err) {}
const built = fs.readFileSync(`${__dirname}/built.txt`, 'utf8').trim();

http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(`${built}; ${kleur.green('kleur works')}; tiny-invariant ${dev}\n`);
}).listen(Number(process.env.PORT || 5000));
