"""Validation tables: app names, domains, config keys/values, assignments, branches, settings."""

from __future__ import annotations

import pytest

from paas.apps.settings import validate_setting, validate_setting_key
from paas.apps.validate import (
    MAX_CONFIG_VALUE,
    parse_assignments,
    validate_app_name,
    validate_branch_name,
    validate_config_key,
    validate_config_value,
    validate_domain,
    validate_process_type,
)
from paas.errors import InvalidArgument

NASTY = ["../x", "a;b", "$(x)", "`id`", "x\nserver_name evil", "a b", "a/b", "a\0b", "", " ",
         "é", "app\u0131", "a\u212a"]


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "a" * 63, "a-b-c", "x1", "a--b"])
def test_app_names_accepted(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize(
    "name", [*NASTY, "a" * 64, "A", "App", "1app", "-app", "app-", "a_b", "a.b", "a\n", "\na"]
)
def test_app_names_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_app_name(name)
    assert exc.value.hint
    assert "\n" not in exc.value.render()


@pytest.mark.parametrize(
    ("domain", "norm"),
    [
        ("example.com", "example.com"),
        ("App.Example.COM", "app.example.com"),
        ("example.com.", "example.com"),
        ("localhost", "localhost"),
        ("*.example.com", "*.example.com"),
        ("*.localhost", "*.localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("1.2.3.4", "1.2.3.4"),
        ("a-b.c0", "a-b.c0"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61])),
    ],
)
def test_domains_accepted(domain: str, norm: str) -> None:
    assert validate_domain(domain) == norm


@pytest.mark.parametrize(
    "domain",
    [
        *NASTY,
        "a.*.b", "*", "*.", "**.a.com", "*a.com", "a.*", "-a.com", "a-.com", "a..com", ".a.com",
        "a.com..", "a_b.com", "a" * 64 + ".com", ".".join(["a" * 63] * 4),
        "bücher.de", "a.com\n", "a.com;", "a.com server_name evil", "a.com{", "\u212a.com",
        "a.com/x", "a.com:80", "*.*.a.com",
    ],
)
def test_domains_refused(domain: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_domain(domain)
    assert "\n" not in exc.value.render()


@pytest.mark.parametrize("key", ["A", "_", "PORT", "DATABASE_URL", "a1", "_x_9", "K" * 255])
def test_config_keys_accepted(key: str) -> None:
    assert validate_config_key(key) == key


@pytest.mark.parametrize("key", [*NASTY, "1A", "A-B", "A=B", "A.B", "K" * 256, "Ä"])
def test_config_keys_refused(key: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_config_key(key)


@pytest.mark.parametrize(
    "value",
    ["", " ", "a b", "'\"", "a=b=c", "line1\nline2\n", "\r\n\t", "ünïcødé ✓ 🚀", "$(x) `id` ;",
     "x" * MAX_CONFIG_VALUE, "é" * (MAX_CONFIG_VALUE // 2)],
)
def test_config_values_accepted(value: str) -> None:
    assert validate_config_value(value) == value


@pytest.mark.parametrize("value", ["a\0b", "\0", "x" * (MAX_CONFIG_VALUE + 1),
                                   "é" * (MAX_CONFIG_VALUE // 2 + 1), "\udc80"])
def test_config_values_refused(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_config_value(value)


def test_parse_assignments_splits_at_first_equals() -> None:
    assert parse_assignments(["A=1", "B=x=y", "C=", "D= spaced 'q' \n"]) == [
        ("A", "1"), ("B", "x=y"), ("C", ""), ("D", " spaced 'q' \n")]
    assert parse_assignments([]) == []


@pytest.mark.parametrize("item", ["A", "=v", "1A=v", "A B=v", "A=\0"])
def test_parse_assignments_refused(item: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_assignments([item])
    assert exc.value.hint


def test_parse_assignments_hint_shows_the_form() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_assignments(["FOO"])
    assert "FOO=VALUE" in exc.value.hint


@pytest.mark.parametrize("name", ["main", "master", "release/v2", "feature/a-b_c", "v1.2",
                                  "ünï", "a.b/c.d", "x@y"])
def test_branch_names_accepted(name: str) -> None:
    assert validate_branch_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "-x", "HEAD", "@", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b",
     "a@{1}", "a.", "a/", "/a", "a//b", ".a", "a/.b", "a.lock", "a.lock/b", "a\x7f", "a\nb",
     "a\0", "x" * 256],
)
def test_branch_names_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_branch_name(name)


@pytest.mark.parametrize("name", ["web", "worker", "release_2", "cron-job"])
def test_process_types(name: str) -> None:
    assert validate_process_type(name) == name


@pytest.mark.parametrize("name", ["", "Web", "a.b", "a b", "x" * 64, "../x"])
def test_process_types_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_process_type(name)


@pytest.mark.parametrize(
    ("key", "value", "norm"),
    [
        ("deploy-branch", "develop", "develop"),
        ("checks", "skipped", "skipped"),
        ("keep-releases", "1", "1"),
        ("keep-releases", " 100 ", "100"),
        ("keep-releases", "007", "7"),
        ("nginx.client-max-body-size", "10m", "10m"),
        ("nginx.proxy-buffers", "8 16k", "8 16k"),
        ("nginx.hsts", "", ""),
    ],
)
def test_settings_accepted(key: str, value: str, norm: str) -> None:
    assert validate_setting(key, value) == norm


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("deploy-branch", "a..b"),
        ("checks", "on"),
        ("keep-releases", "0"),
        ("keep-releases", "101"),
        ("keep-releases", "x"),
        ("keep-releases", "1.5"),
        ("nginx.x", "1; return 301 http://evil"),
        ("nginx.x", "a}"),
        ("nginx.x", "$host"),
        ("nginx.x", "a\nb"),
        ("nginx.x", "'q'"),
        ("nginx.x", " lead"),
        ("nginx.x", "a#b"),
    ],
)
def test_settings_values_refused(key: str, value: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_setting(key, value)


@pytest.mark.parametrize("key", ["foo", "nginx.", "nginx.X", "nginx.a;b", "nginx.a.b", "Checks"])
def test_unknown_settings_list_known_ones(key: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_setting_key(key)
    assert "deploy-branch" in exc.value.hint and "keep-releases" in exc.value.hint
