<?php

declare(strict_types=1);

namespace Acme\Greeting;

final class Greeting
{
    public static function text(): string
    {
        return 'hello from acme/greeting';
    }
}
