"""The app registry through the real CLI: apps:*, config, config:get, domains*, git:set,
settings*, in a throwaway instance. Config vars are written with the store API (config:set
belongs to the deploy commands), then read back through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from paas.apps.store import AppStore
from paas.state import connect

CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]

pytestmark = pytest.mark.integration

NASTY_VALUES = {
    "SPACES": "  a b  ",
    "QUOTES": "it's \"quoted\" `x` $(y) \\n '' \\'",
    "EQUALS": "a=b==c=",
    "NEWLINES": "line1\nline2\n\n",
    "UNICODE": "ünïcødé ✓ 🚀 中文",
    "EMPTY": "",
    "DOLLAR": "$HOME ${PATH} $((1+1))",
}


def _db(env: dict[str, str]) -> Path:
    return Path(env["PAAS_ROOT"]) / "state.db"


def _set_config(env: dict[str, str], app: str, values: dict[str, str]) -> None:
    conn = connect(str(_db(env)))
    try:
        AppStore(conn).set_config(app, values)
    finally:
        conn.close()


def _one_error_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_create_list_info(cli: CliRunner, paas_root: dict[str, str]) -> None:
    paas_root["PAAS_SSH_HOST"] = "paas.test"
    res = cli("apps:create", "web")
    assert res.stdout.splitlines()[0] == "-----> Creating web... done"
    assert "git remote add paas paas@paas.test:web" in res.stdout
    cli("apps:create", "api")

    lines = cli("apps:list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "DOMAINS"]
    assert [ln.split()[0] for ln in lines[1:]] == ["api", "web"]
    assert lines[2].endswith("web.localhost")

    listed = json.loads(cli("apps:list", "--format", "json").stdout)
    assert [a["name"] for a in listed] == ["api", "web"]
    assert listed[1]["domains"] == ["web.localhost"] and listed[1]["created"].endswith("Z")

    info = json.loads(cli("apps:info", "web", "--format", "json").stdout)
    assert info["name"] == "web" and info["domains"] == ["web.localhost"]
    assert info["deploy_branch"] == "main" and info["config_vars"] == 0
    text = cli("apps:info", "web").stdout
    assert "web app information" in text and "Deploy branch: main" in text

    again = cli("apps:create", "web", check=False)
    assert "app web already exists" in _one_error_line(again, 4)


def test_config_values_roundtrip_exactly(cli: CliRunner, paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    _set_config(paas_root, "web", NASTY_VALUES)
    for key, value in NASTY_VALUES.items():
        assert cli("config:get", "web", key).stdout == value + "\n", key
    assert json.loads(cli("config", "web", "--format", "json").stdout) == NASTY_VALUES

    # --format shell, sourced by a real shell, gives back every value
    exports = cli("config", "web", "--format", "shell").stdout
    dump = subprocess.run(
        ["bash", "-c", exports + 'for k in "$@"; do printf "%s\\0%s\\0" "$k" "${!k}"; done',
         "bash", *NASTY_VALUES], capture_output=True, check=True).stdout.decode()
    parts = dump.split("\0")[:-1]
    assert dict(zip(parts[::2], parts[1::2])) == NASTY_VALUES

    shown = cli("config", "web").stdout.splitlines()
    assert shown[0] == "=====> web env vars"
    assert "EQUALS:    a=b==c=" in shown


def test_config_get_is_byte_exact(cli: CliRunner, paas_root: dict[str, str]) -> None:
    """Carriage returns and trailing whitespace survive (no text-mode translation)."""
    cli("apps:create", "web")
    value = "a\r\nb \t\r\n\n"
    _set_config(paas_root, "web", {"RAW": value})
    res = subprocess.run([sys.executable, "-m", "paas", "config:get", "web", "RAW"],
                         env=paas_root, capture_output=True, check=True)
    assert res.stdout == (value + "\n").encode()


def test_config_get_errors(cli: CliRunner) -> None:
    cli("apps:create", "web")
    assert "not set" in _one_error_line(cli("config:get", "web", "NOPE", check=False), 3)
    assert "paas apps:list" in _one_error_line(cli("config:get", "nope", "A", check=False), 3)
    _one_error_line(cli("config:get", "web", "BAD-KEY", check=False), 2)
    assert cli("config", "web").stdout == "=====> web env vars\n"


def test_domains(cli: CliRunner) -> None:
    cli("apps:create", "web")
    cli("apps:create", "api")
    cli("domains:add", "web", "WWW.Example.com.", "*.example.org")
    got = json.loads(cli("domains", "web", "--format", "json").stdout)
    assert got["domains"] == ["*.example.org", "www.example.com"] and got["default"] is True
    # like Dokku, the default vhost stays next to the added ones
    assert got["effective"] == ["web.localhost", "*.example.org", "www.example.com"]

    clash = cli("domains:add", "api", "www.example.com", check=False)
    line = _one_error_line(clash, 4)
    assert "belongs to app web" in line
    assert json.loads(cli("domains", "api", "--format", "json").stdout)["domains"] == []

    cli("domains:remove", "web", "www.example.com")
    cli("domains:add", "api", "www.example.com")
    cli("domains:set", "api", "api.example.com")
    assert json.loads(cli("domains", "api", "--format", "json").stdout)["effective"] == [
        "api.example.com"]

    cli("domains:set-global", "apps.example.net")
    info = json.loads(cli("apps:info", "web", "--format", "json").stdout)
    assert info["domains"] == ["web.apps.example.net", "*.example.org"]
    cli("domains:remove", "web", "web.apps.example.net")  # the default can be removed too
    info = json.loads(cli("apps:info", "web", "--format", "json").stdout)
    assert info["domains"] == ["*.example.org"]
    cli("domains:set", "web")
    info = json.loads(cli("apps:info", "web", "--format", "json").stdout)
    assert info["domains"] == ["web.apps.example.net"]
    cli("domains:clear-global")
    assert "web.localhost" in cli("domains", "web").stdout


def test_settings_and_deploy_branch(cli: CliRunner) -> None:
    cli("apps:create", "web")
    cli("git:set", "web", "deploy-branch", "release/v2")
    assert json.loads(cli("apps:info", "web", "--format", "json").stdout)[
        "deploy_branch"] == "release/v2"
    _one_error_line(cli("git:set", "web", "deploy-branch", "a..b", check=False), 2)
    cli("settings:set", "web", "keep-releases", "10")
    cli("settings:set", "web", "nginx.client-max-body-size", "10m")
    rows = {r["key"]: r for r in json.loads(cli("settings", "web", "--format", "json").stdout)}
    assert rows["keep-releases"]["value"] == "10" and rows["checks"]["value"] == "enabled"
    assert rows["nginx.client-max-body-size"]["set"] is True
    line = _one_error_line(cli("settings:set", "web", "colour", "blue", check=False), 2)
    assert "deploy-branch" in line
    _one_error_line(cli("settings:set", "web", "nginx.x", "1; return 302 x", check=False), 2)
    cli("settings:unset", "web", "keep-releases")
    cli("git:set", "web", "deploy-branch")
    rows = {r["key"]: r for r in json.loads(cli("settings", "web", "--format", "json").stdout)}
    assert rows["keep-releases"]["set"] is False and rows["deploy-branch"]["value"] == "main"


BAD_NAMES = ["../x", "a;b", "$(x)", "x\nserver_name evil", "Web", "a" * 64, "app-", "ünï"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_rejected_before_anything_is_written(
        cli: CliRunner, paas_root: dict[str, str], bad: str) -> None:
    line = _one_error_line(cli("apps:create", bad, check=False), 2)
    assert "invalid app name" in line
    assert not _db(paas_root).exists()  # the state database was not even opened
    assert os.listdir(paas_root["PAAS_ROOT"]) == []


def test_bad_input_writes_nothing(cli: CliRunner, paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    before = cli("apps:list", "--format", "json").stdout
    for args in (["domains:add", "web", "ok.example.com", "a.*.b"],
                 ["domains:add", "web", "x\nserver_name evil"],
                 ["domains:set", "web", "-a.com"],
                 ["domains:set-global", "*.example.com"],
                 ["settings:set", "web", "checks", "maybe"],
                 ["domains", "$(x)"],
                 ["config", "../x"]):
        _one_error_line(cli(*args, check=False), 2)
    assert cli("apps:list", "--format", "json").stdout == before
    assert json.loads(cli("domains", "web", "--format", "json").stdout)["global"] is None
    conn = connect(str(_db(paas_root)))
    try:
        for table in ("app_domains", "app_settings", "app_config", "global_settings"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    finally:
        conn.close()


def test_unknown_app(cli: CliRunner) -> None:
    for args in (["apps:info", "nope"], ["config", "nope"], ["domains", "nope"],
                 ["domains:add", "nope", "a.com"], ["git:set", "nope", "deploy-branch", "x"],
                 ["settings", "nope"]):
        assert "paas apps:list" in _one_error_line(cli(*args, check=False), 3)
