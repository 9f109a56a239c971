<?php
declare(strict_types=1);

require __DIR__ . '/../vendor/autoload.php';

header('Content-Type: text/plain; charset=utf-8');
echo Acme\Greeting\Greeting::text(), "\n";
