<?php
// bench/deploy's PHP sample app: answers "php VERSION" (the VERSION file the bench
// writes for each deploy), php-fpm behind nginx.
header('Content-Type: text/plain');
echo "php ", trim(file_get_contents(__DIR__ . '/../VERSION')), "\n";
