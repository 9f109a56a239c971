<?php
// The front controller: every path that is not a file ends up here.
declare(strict_types=1);

require __DIR__ . '/../vendor/autoload.php';

header('Content-Type: text/plain; charset=utf-8');
echo Sample\Greeter::hello(), "\n";
echo 'uri ', $_SERVER['REQUEST_URI'], "\n";
echo 'greeting ', getenv('GREETING') ?: '-', "\n";
echo 'memory_limit ', ini_get('memory_limit'), "\n";
echo 'upload_max_filesize ', ini_get('upload_max_filesize'), "\n";
echo 'https ', $_SERVER['HTTPS'] ?? '-', "\n";
error_log('php-composer served ' . $_SERVER['REQUEST_URI']);
