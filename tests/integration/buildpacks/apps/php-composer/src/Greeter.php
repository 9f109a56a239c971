<?php

declare(strict_types=1);

namespace Sample;

final class Greeter
{
    public const VERSION = 'v1';

    public static function hello(): string
    {
        return 'hello from php ' . self::VERSION;
    }
}
