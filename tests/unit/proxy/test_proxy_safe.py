"""The nginx value validators and the settings table (pure)."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.proxy import NGINX_SETTINGS, Safe, safe, validate_setting, validate_settings

INJECTIONS = ["a.com; include /etc/passwd", "a.com\nroot /", "a{b", "a}b", 'a"b', "a'b",
              "$host", "a b", "a\tb", "", "a.com;", "${x}"]


@pytest.mark.parametrize("name", ["example.com", "a-b.example.com", "x", "*.example.com",
                                  "EXAMPLE.com", "a1.b2.c3", "xn--bcher-kva.example"])
def test_domains_accepted(name: str) -> None:
    out = safe.domain(name)
    assert isinstance(out, Safe) and out == name.lower()


@pytest.mark.parametrize("name", [*INJECTIONS, "-a.com", "a-.com", "a..com", "*.*.com",
                                  "a.*.com", "*", "a*.com", "a_b.com", "a" * 64 + ".com",
                                  ("a" * 60 + ".") * 5, 42])
def test_domains_refused(name: object) -> None:
    with pytest.raises(InvalidArgument):
        safe.domain(name)


def test_ip_and_port() -> None:
    assert safe.ip("10.0.0.2") == "10.0.0.2"
    assert safe.ip("::1") == "[::1]" and safe.ip(safe.ip("::1")) == "[::1]"
    assert safe.port(5000) == "5000" and safe.port("80") == "80"
    for bad in ["10.0.0.256", "localhost", "10.0.0.1;", "1.2.3.4 5", ""]:
        with pytest.raises(InvalidArgument):
            safe.ip(bad)
    for badp in [0, 65536, -1, "80;", "8o", True, 1.5, "123456"]:
        with pytest.raises(InvalidArgument):
            safe.port(badp)


def test_sizes_times_flags() -> None:
    assert safe.size("10M") == "10m" and safe.size("0") == "0" and safe.size("512k") == "512k"
    assert safe.time("60s") == "60s" and safe.time("500ms") == "500ms" and safe.time("5") == "5"
    for bad in ["10mb", "1.5m", "m", "-1", "10m;", "1 m", "10t"]:
        with pytest.raises(InvalidArgument):
            safe.size(bad)
    for bad in ["60sec", "1d", "s", "1 s", "60s;"]:
        with pytest.raises(InvalidArgument):
            safe.time(bad)
    with pytest.raises(InvalidArgument):
        safe.onoff("yes")


def test_paths_are_quoted_and_refuse_breakouts() -> None:
    assert safe.path("/var/lib/paas x/nginx") == '"/var/lib/paas x/nginx"'
    assert safe.path(safe.path("/a")) == '"/a"'
    for bad in ["relative", '/a"b', "/a$b", "/a;b", "/a{b", "/a\nb", "/a\\b"]:
        with pytest.raises(InvalidArgument):
            safe.path(bad)


def test_text_escapes_quotes_and_refuses_variables() -> None:
    assert safe.text('say "hi" \\ there') == '"say \\"hi\\" \\\\ there"'
    with pytest.raises(InvalidArgument):
        safe.text("costs $5")


def test_join_only_validated_values() -> None:
    assert safe.join([safe.domain("a.com"), safe.domain("b.com")]) == "a.com b.com"
    with pytest.raises(InvalidArgument):
        safe.join([safe.domain("a.com"), "b.com; include x"])
    with pytest.raises(InvalidArgument):
        safe.join([])


def test_settings_table() -> None:
    assert set(NGINX_SETTINGS) >= {"client-max-body-size", "proxy-read-timeout",
                                   "proxy-connect-timeout", "proxy-send-timeout",
                                   "proxy-buffering"}
    assert validate_setting("client-max-body-size", "20m") == "20m"
    assert validate_setting("proxy-buffering", "off") == "off"
    assert validate_setting("proxy-read-timeout", "120s") == "120s"
    with pytest.raises(InvalidArgument, match="unknown nginx setting"):
        validate_setting("root", "/")
    for key in NGINX_SETTINGS:
        for bad in INJECTIONS:
            with pytest.raises(InvalidArgument):
                validate_setting(key, bad)


def test_settings_merge_defaults() -> None:
    merged = validate_settings((("proxy-read-timeout", "5s"),))
    assert merged == {"client-max-body-size": "1m", "proxy-read-timeout": "5s"}
    assert validate_settings((("client-max-body-size", "2g"),))["client-max-body-size"] == "2g"
