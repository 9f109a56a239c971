<?php
// A PHP app without composer: index.php at the top, served from the app directory.
header('Content-Type: text/plain');
echo "plain php ", PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, "\n";
