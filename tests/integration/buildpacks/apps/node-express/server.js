// An Express app on $PORT: "/" answers "VERSION express X.Y.Z"; /built.txt is
// the file the build step wrote; /dev tells whether the devDependency is in the image.
const express = require('express');
const fs = require('fs');
const path = require('path');

const version = fs.readFileSync(path.join(__dirname, 'VERSION'), 'utf8').trim();
const app = express();

app.get('/', (req, res) => {
  res.type('text/plain').send(`${version} express ${require('express/package.json').version}\n`);
});
app.get('/dev', (req, res) => {
  let found = 'absent';
  try {
    require.resolve('tiny-invariant');
    found = 'present';
  } catch (err) {}
  res.type('text/plain').send(`tiny-invariant ${found}, NODE_ENV=${process.env.NODE_ENV}\n`);
});
app.use(express.static(path.join(__dirname, 'public')));

const port = Number(process.env.PORT || 5000);
app.listen(port, () => console.log(`listening on ${port}`));
