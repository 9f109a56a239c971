"""letsencrypt:* for real: pebble issues through paas's own nginx (HTTP-01 validated at
the instance's PAAS_HTTP_PORT), curl checks the result over HTTPS with pebble's root.

One instance and one pebble for the module; apps are not deployed (nginx:set renders
their vhost, which answers 503 over a verified TLS connection). Covered: issuance for
two domains, a domain that does not resolve (named, nothing installed, the old
certificate serving), an unreachable ACME server, bad settings, revocation.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from acme_instance import Instance, acme_instance
from procs import free_port

DOMAINS = ("web.example.com", "www.example.com")


@pytest.fixture(scope="module")
def inst(instance_tools: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with acme_instance(instance_tools, tmp_path_factory.mktemp("pebble")) as inst:
        yield inst


def _one_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_bad_email_and_server_are_one_line_and_change_nothing(inst: Instance) -> None:
    for args in (("email", "ops"), ("email", "ops@"), ("server", "http://plain.example/dir"),
                 ("emial", "a@b.org")):
        res = inst.cli("letsencrypt:set", "--global", *args, check=False)
        assert res.returncode == 2, res
        line = _one_line(res)
        assert line.startswith("error: ")
    res = inst.cli("letsencrypt:set", "web", "email", "a@example.org", check=False)
    assert res.returncode == 2 and "--global" in _one_line(res)
    import sqlite3

    with sqlite3.connect(inst.root / "state.db") as db:
        settings = dict(db.execute("SELECT key, value FROM acme_settings"))
    assert settings == {"email": "ops@example.com", "server": inst.pebble.directory}


def test_issues_one_certificate_for_two_domains_through_paas_nginx(inst: Instance) -> None:
    inst.app("web", *DOMAINS)
    assert inst.curl(DOMAINS[0]).returncode != 0  # no certificate yet: handshake refused
    res = inst.cli("letsencrypt:enable", "web")
    assert "-----> Ordering a certificate for web.example.com, www.example.com" in res.stdout
    assert "-----> Validating www.example.com (http-01)" in res.stdout
    for host in DOMAINS:
        out = inst.curl(host)
        assert out.stdout == "503 0", (out.stdout, out.stderr)  # verified with pebble's root
    assert inst.challenge_files() == []
    row = inst.listing()["web"]
    assert row["enabled"] and sorted(row["domains"]) == sorted(DOMAINS)
    assert row["days_left"] > 30 and row["last_error"] == "" and row["source"] == "acme"
    assert "web" in inst.cli("letsencrypt:list").stdout.splitlines()[1]
    assert inst.cli("letsencrypt:active", "web").stdout.strip() == "true"
    info = inst.cli("apps:info", "web").stdout
    assert "Letsencrypt:" in info and " on" in info
    key = (inst.root / "acme" / "account.key").stat()
    assert key.st_mode & 0o777 == 0o600 and key.st_uid == 0


def test_a_domain_that_does_not_resolve_is_named_and_the_old_certificate_serves(
        inst: Instance) -> None:
    inst.issued("web", *DOMAINS)
    before = inst.serial(DOMAINS[0])
    assert before
    inst.cli("domains:add", "web", "lost.example.com")  # no DNS record at challtestsrv
    try:
        res = inst.cli("letsencrypt:enable", "web", check=False)
        assert res.returncode == 5, res
        line = _one_line(res)
        assert "lost.example.com" in line and "could not validate" in line
        assert "nothing was installed" in line
        assert "web.example.com:" not in line  # only the failed domain is named
        assert inst.serial(DOMAINS[0]) == before
        assert inst.curl(DOMAINS[0]).stdout == "503 0"
        assert inst.challenge_files() == []
        row = inst.listing()["web"]
        assert "lost.example.com" in row["last_error"] and row["failures"] == 1
        assert "renewal failing" in inst.cli("apps:info", "web").stdout
        assert "renewal failing: " in inst.cli("certs:report", "web").stdout
        report = inst.cli("report", check=False).stdout
        assert "the certificate of web failed to renew" in report
    finally:
        inst.cli("domains:remove", "web", "lost.example.com")


def test_an_unreachable_acme_server_is_one_line(inst: Instance) -> None:
    inst.app("down", "down.example.com")
    dead = f"https://127.0.0.1:{free_port()}/dir"
    inst.cli("letsencrypt:set", "--global", "server", dead)
    try:
        res = inst.cli("letsencrypt:enable", "down", check=False)
        assert res.returncode == 5, res
        line = _one_line(res)
        assert f"cannot reach the ACME server {dead}" in line and "refused" in line.lower()
        assert inst.cli("letsencrypt:active", "down").stdout.strip() == "false"
    finally:
        inst.cli("letsencrypt:set", "--global", "server", inst.pebble.directory)


def test_an_untrusted_acme_server_is_one_line(inst: Instance) -> None:
    env = dict(inst.env)
    env.pop("PAAS_ACME_CA_BUNDLE")
    res = subprocess.run([*_paas(), "letsencrypt:enable", "down"], env=env,
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 5
    assert "does not trust" in _one_line(res) and "PAAS_ACME_CA_BUNDLE" in res.stderr


def _paas() -> list[str]:
    import sys

    return [sys.executable, "-m", "paas"]


def test_revoke(inst: Instance) -> None:
    inst.app("rev", "rev.example.com")
    inst.cli("letsencrypt:enable", "rev")
    serial = inst.serial("rev.example.com")
    res = inst.cli("letsencrypt:revoke", "rev")
    assert "-----> Revoking the certificate of rev" in res.stdout
    status = inst.pebble.cert_status(serial)
    assert status["Status"] == "Revoked", status
    assert inst.curl("rev.example.com").returncode != 0  # no certificate any more
    assert inst.cli("letsencrypt:active", "rev").stdout.strip() == "false"
    again = inst.cli("letsencrypt:revoke", "rev", check=False)
    assert again.returncode == 3 and "no certificate" in _one_line(again)


def test_a_new_email_updates_the_account_and_disable_removes_the_certificate(
        inst: Instance) -> None:
    inst.app("dis", "dis.example.com")
    inst.cli("letsencrypt:set", "--global", "email", "tls@example.com")
    try:
        inst.cli("letsencrypt:enable", "dis")
    finally:
        inst.cli("letsencrypt:set", "--global", "email", "ops@example.com")
    reg = json.loads((inst.root / "acme" / "account.json").read_text())
    assert reg["email"] == "tls@example.com" and reg["server"] == inst.pebble.directory
    assert inst.curl("dis.example.com").stdout == "503 0"
    res = inst.cli("letsencrypt:disable", "dis")
    assert "Removed the certificate of dis" in res.stdout
    assert inst.curl("dis.example.com").returncode != 0
    assert inst.listing()["dis"]["enabled"] is False
    again = inst.cli("letsencrypt:disable", "dis", check=False)
    assert again.returncode == 3 and "not enabled" in _one_line(again)
