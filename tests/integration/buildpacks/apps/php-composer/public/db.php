<?php
// The MySQL extensions load, and PDO's driver really tries to connect (port 9 of the
// loopback: nothing listens, so "Connection refused", never "could not find driver").
declare(strict_types=1);

header('Content-Type: text/plain; charset=utf-8');
foreach (['pdo_mysql', 'mysqli', 'mysqlnd', 'mbstring', 'xml', 'curl', 'gd', 'zip'] as $ext) {
    echo $ext, ' ', extension_loaded($ext) ? 'loaded' : 'missing', "\n";
}
try {
    new PDO('mysql:host=127.0.0.1;port=9;dbname=app', 'app', 'secret', [PDO::ATTR_TIMEOUT => 2]);
    echo "pdo connected\n";
} catch (PDOException $err) {
    echo 'pdo error ', $err->getMessage(), "\n";
}
