"""HTTPS for real: a paas instance, its nginx, certificates added with the CLI.

curl trusts the test PKI's root (``--cacert``) over HTTPS and HTTP/2; SNI picks each
app's certificate, an unknown name is refused; plain HTTP answers 301 once a
certificate is installed, except the ACME challenge path; HSTS; X-Forwarded-Proto
reaching the upstream; TLS 1.1 refused, 1.3 offered; every bad input is one line,
a non-zero exit and no change; the key file's mode; the key never printed. And
under wrk load, installing, replacing and removing certificates fails no request
and never reloads nginx (its workers stay the same processes).
"""

from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pki import NOW, Pki
from prereq import require

from paas.config import load_context
from paas.model import Route, Upstream
from paas.proxy import Proxy
from paas.proxy.nginx import master_pid, workers
from paas.proxy.params import default_user

PKI = Pki()
WEB = ("web.example.test", "www.example.test")
API = "api.example.test"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Site:
    """The module's instance: apps web and api, web proxied to a python backend."""

    def __init__(self, env: dict[str, str], cli: Any, tmp: Path) -> None:
        self.env, self.cli, self.tmp = env, cli, tmp
        self.root = Path(env["PAAS_ROOT"])
        self.http = int(env["PAAS_HTTP_PORT"])
        self.https = int(env["PAAS_HTTPS_PORT"])
        self.backend = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.backend.daemon_threads = True
        threading.Thread(target=self.backend.serve_forever, daemon=True).start()
        self.proxy = Proxy(load_context(env), env)

    def route_web(self) -> None:
        """web's vhost with the backend as upstream (what a deploy would do)."""
        from paas.apps.store import AppStore
        from paas.state.db import connect

        port = self.backend.server_address[1]
        conn = connect(str(self.root / "state.db"))
        try:
            settings = {k.removeprefix("nginx."): v for k, v in AppStore(conn).settings(
                "web").items() if k.startswith("nginx.")}
        finally:
            conn.close()
        self.proxy.apply(Route("web", ("web.localhost", *WEB), (Upstream("127.0.0.1", port),),
                               tuple(sorted(settings.items()))))

    def files(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)

    def add(self, app: str, chain: bytes, key: bytes, check: bool = True) -> Any:
        return self.cli("certs:add", app, self.files(f"{app}.crt", chain),
                        self.files(f"{app}.key", key), check=check)

    def with_cert(self, app: str = "web") -> None:
        """A certificate installed for ``app`` (tests need not run in order)."""
        if not (self.root / "certs" / app / "tls.pem").exists():
            self.add(app, *PKI.leaf(*(WEB if app == "web" else (API,))))

    def curl(self, *args: str, host: str = WEB[0]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", self.files("root.pem", PKI.root_pem),
             "--resolve", f"{host}:{self.https}:127.0.0.1",
             "--resolve", f"{host}:{self.http}:127.0.0.1", *args],
            capture_output=True, text=True, check=False)

    def url(self, path: str = "/", host: str = WEB[0], tls: bool = True) -> str:
        return (f"https://{host}:{self.https}{path}" if tls
                else f"http://{host}:{self.http}{path}")

    def peer_fingerprint(self, host: str) -> str:
        ctx = ssl.create_default_context(cadata=PKI.root_pem.decode())
        with socket.create_connection(("127.0.0.1", self.https), 5) as s, \
                ctx.wrap_socket(s, server_hostname=host) as t:
            der = t.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    def nginx_pids(self) -> tuple[int | None, set[int]]:
        master = master_pid(self.proxy.params)
        return master, set(workers(master)) if master else set()


@pytest.fixture(scope="module")
def site(instance_tools: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require("nginx", "curl", "openssl", root=True)
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        cli = cli_for(env)
        s = Site(env, cli, tmp_path_factory.mktemp("https"))
        try:
            cli("apps:create", "web")
            cli("domains:add", "web", *WEB)
            cli("apps:create", "api")
            cli("domains:add", "api", API)  # starts nginx
            s.route_web()
            yield s
        finally:
            s.backend.shutdown()
            cli("nginx:stop", check=False)


def _one_line_error(res: subprocess.CompletedProcess[str], match: str) -> None:
    assert res.returncode in (2, 3), (res.returncode, res.stderr)
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert re.search(match, res.stderr), res.stderr
    assert "Traceback" not in res.stderr and "PRIVATE KEY-----\n" not in res.stdout + res.stderr


def _tree(site: Site) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(site.root / "certs"):
        for n in names:
            out[os.path.join(dirpath, n)] = Path(dirpath, n).read_bytes()
    return out


def test_bad_inputs_are_one_line_and_change_nothing(site: Site) -> None:
    chain, key = PKI.leaf(*WEB)
    other = Pki()
    bad = {
        "does not cover web.example.test": PKI.leaf("shop.example.net"),
        "expired on": PKI.leaf(*WEB, start=NOW - timedelta(days=30), end=NOW - timedelta(1)),
        "does not match": (chain, PKI.leaf(*WEB)[1]),
        "holds no PEM certificate": (b"garbage\n", key),
        "holds no PEM private key": (chain, b"-----BEGIN NOTHING-----\n"),
        "not in order": (PKI.leaf_only(chain) + PKI.root_pem + chain.split(
            b"-----END CERTIFICATE-----\n")[1], key),
        "not issued by certificate 2": (PKI.leaf_only(chain) + other.root_pem, key),
    }
    for round_ in ("no certificate yet", "a certificate installed"):
        before = _tree(site)
        report = site.cli("certs:report", "web", "--format", "json").stdout
        for match, (c, k) in bad.items():
            _one_line_error(site.add("web", c, k, check=False), match)
        _one_line_error(site.cli("certs:add", "web", site.files("x", chain), check=False),
                        "give both")
        _one_line_error(site.cli("certs:add", "web", "/nonexistent.pem", "/nonexistent.key",
                                 check=False), "does not exist")
        _one_line_error(site.cli("certs:add", "web", input="not a tar", check=False),
                        "not a tar")
        _one_line_error(site.cli("certs:add", "nosuchapp", site.files("a", chain),
                                 site.files("b", key), check=False), "does not exist")
        assert _tree(site) == before, round_
        assert site.cli("certs:report", "web", "--format", "json").stdout == report
        if round_ == "no certificate yet":
            assert not (site.root / "certs" / "web" / "tls.pem").exists()
            site.add("web", chain, key)


def test_https_http2_and_sni_per_app(site: Site) -> None:
    site.with_cert("web")
    site.add("api", *PKI.leaf(API))
    for host in (*WEB, API):
        res = site.curl("-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2",
                        site.url(host=host), host=host)
        assert res.returncode == 0, res.stderr
        assert res.stdout == ("200 2" if host != API else "503 2"), host
    web = json.loads(site.cli("certs:report", "web", "--format", "json").stdout)
    api = json.loads(site.cli("certs:report", "api", "--format", "json").stdout)
    assert site.peer_fingerprint(WEB[1]) == web["fingerprint"]
    assert site.peer_fingerprint(API) == api["fingerprint"] != web["fingerprint"]
    assert api["source"] == "manual" and api["domains"] == [API] and api["days_left"] >= 88
    # a name no app serves: the handshake is refused, no certificate shown
    res = site.curl("-o", "/dev/null", site.url(host="nobody.example.test"),
                    host="nobody.example.test")
    assert res.returncode == 35, res  # SSL connect error
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.https}",
                          "-servername", "nobody.example.test"], input="", capture_output=True,
                         text=True, timeout=10, check=False)
    assert "unrecognized name" in out.stdout + out.stderr and "BEGIN CERT" not in out.stdout


def test_redirect_except_acme_challenges(site: Site) -> None:
    site.with_cert("web")
    res = site.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    site.url("/a/b?c=d", tls=False))
    assert res.stdout == f"301 https://{WEB[0]}:{site.https}/a/b?c=d"
    challenges = site.proxy.params.acme_challenge_dir
    gid = grp.getgrnam(default_user()[1]).gr_gid
    token = Path(challenges, "tok-123")
    token.write_text("tok-123.thumbprint")
    os.chown(token, 0, gid)
    token.chmod(0o640)
    try:
        for host in (WEB[0], API, "not-an-app.example.test"):  # also before an app has a vhost
            res = site.curl("-w", " %{http_code}",
                            site.url("/.well-known/acme-challenge/tok-123", host, tls=False),
                            host=host)
            assert res.stdout == "tok-123.thumbprint 200", (host, res)
        res = site.curl("-o", "/dev/null", "-w", "%{http_code}",
                        site.url("/.well-known/acme-challenge/nope", tls=False))
        assert res.stdout == "404"
    finally:
        token.unlink()


def test_tls_versions(site: Site) -> None:
    site.with_cert("web")
    def s_client(*flags: str) -> str:
        res = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.https}",
                              "-servername", WEB[0], *flags], input="", capture_output=True,
                             text=True, timeout=10, check=False)
        return res.stdout + res.stderr

    assert "Protocol  : TLSv1.3" in s_client() or "TLSv1.3" in s_client("-tls1_3")
    assert re.search(r"New, TLSv1.3, Cipher is TLS_", s_client("-tls1_3"))
    assert re.search(r"New, TLSv1.2, Cipher is ECDHE-", s_client("-tls1_2"))
    old = s_client("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Cipher is (NONE)" in old or "alert protocol version" in old, old
    # Mozilla intermediate's groups (X25519, P-256, P-384) and its ECDHE-only TLS 1.2 suites
    assert "Server Temp Key: X25519" in s_client("-tls1_3")
    assert "Cipher is (NONE)" in s_client("-tls1_3", "-groups", "secp521r1")
    assert "Cipher is (NONE)" in s_client("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:AES128-SHA")


def test_key_file_mode_owner_and_never_printed(site: Site) -> None:
    site.with_cert("web")
    path = site.root / "certs" / "web" / "tls.pem"
    gid = grp.getgrnam(default_user()[1]).gr_gid
    st = path.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, gid)
    for d in (path.parent, path.parent.parent):
        assert (stat.S_IMODE(d.stat().st_mode), d.stat().st_gid) == (0o710, gid)
    shown = site.cli("certs:show", "web").stdout
    assert shown.count("BEGIN CERTIFICATE") == 2 and "PRIVATE" not in shown
    for args in (("certs:report", "web"), ("certs:report", "web", "--format", "json"),
                 ("config", "web"), ("nginx:show-config", "web")):
        res = site.cli(*args)
        assert "PRIVATE" not in res.stdout + res.stderr, args
    assert b"PRIVATE KEY" in path.read_bytes()


def test_hsts_and_forwarded_proto(site: Site) -> None:
    site.with_cert("web")
    site.cli("nginx:set", "web", "hsts", "true")
    site.cli("nginx:set", "web", "hsts-max-age", "600")
    site.route_web()  # nginx:set rendered the undeployed app's vhost: the backend again
    res = site.curl("-D", "-", site.url("/h"))
    assert re.search(r"(?i)^strict-transport-security: max-age=600; includeSubDomains\r?$",
                     res.stdout, re.MULTILINE), res.stdout
    body = json.loads(res.stdout.split("\n\n", 1)[1])
    assert body["headers"]["X-Forwarded-Proto"] == "https"
    assert body["headers"]["X-Forwarded-Port"] == str(site.https)
    plain = site.curl("-D", "-", "-o", "/dev/null", site.url(tls=False))
    assert "strict-transport-security" not in plain.stdout.lower()
    site.cli("nginx:set", "web", "hsts", "false")
    site.route_web()
    assert "strict-transport" not in site.curl("-D", "-", site.url()).stdout.lower()


def test_generate_and_tar_like_dokku(site: Site) -> None:
    site.cli("certs:generate", "api")
    report = json.loads(site.cli("certs:report", "api", "--format", "json").stdout)
    assert report["source"] == "self-signed" and API in report["domains"]
    ca = site.files("api-self.pem", site.cli("certs:show", "api").stdout.encode())
    res = site.curl("-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca,
                    site.url(host=API), host=API)
    assert res.stdout == "503", res
    chain, key = PKI.leaf(API)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("server.crt", chain), ("server.key", key)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    res = subprocess.run([*_paas(site), "certs:add", "api"], input=buf.getvalue(),
                         env=site.env, capture_output=True, check=False)
    assert res.returncode == 0, res.stderr
    assert json.loads(site.cli("certs:report", "api", "--format", "json").stdout)[
        "source"] == "manual"


def _paas(site: Site) -> list[str]:
    import sys

    return [sys.executable, "-m", "paas"]


def test_domains_add_warns_when_the_certificate_does_not_cover(site: Site) -> None:
    site.with_cert("api")
    res = site.cli("domains:add", "api", "more.example.org")
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "does not cover more.example.org" in warnings[0]
    site.cli("domains:remove", "api", "more.example.org")


def _wrk(url: str, seconds: int, host: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s",
                             "-H", f"Host: {host}", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _errors(out: str) -> list[str]:
    """wrk's error lines: socket errors and non-2xx/3xx responses."""
    return [ln for ln in out.splitlines() if "Socket errors" in ln or "Non-2xx" in ln]


class _H2Load(threading.Thread):
    """HTTPS load with the app's name as SNI (wrk sends the URL's host as SNI and has no
    way to connect elsewhere; h2load has --connect-to): keep-alive connections, HTTP/2
    or (``--h1``) HTTP/1.1, as runs of 2000 requests back to back until ``stop`` (h2load's
    ``-D`` mode can hang when nginx closes a connection after ``keepalive_requests``)."""

    def __init__(self, site: Site, *flags: str) -> None:
        super().__init__(daemon=True)
        self.argv = ["h2load", "-c", "4", "-t", "1", "-n", "2000", "-N", "10", *flags,
                     f"--connect-to=127.0.0.1:{site.https}", site.url()]
        self.outs: list[str] = []
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            res = subprocess.run(self.argv, capture_output=True, text=True, timeout=60,
                                 check=False)
            self.outs.append(res.stdout + res.stderr + f"exit {res.returncode}")

    def stop(self) -> int:
        """Requests done, all of them succeeded (asserted)."""
        self.done.set()
        self.join(90)
        assert not self.is_alive(), "h2load hangs"
        total = 0
        for out in self.outs:
            m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
            assert m and out.endswith("exit 0"), out
            done, ok = int(m.group(2)), int(m.group(3))
            assert ok == done == 2000 and m.group(4) == m.group(5) == m.group(6) == "0", out
            total += done
        return total


def test_certificate_changes_under_load_fail_nothing_and_never_reload(site: Site) -> None:
    site.with_cert("web")
    require("wrk", "h2load")
    before = site.nginx_pids()
    assert before[0] is not None and before[1]
    # HTTPS keep-alive (HTTP/2 and HTTP/1.1): replace the certificate twice
    h2, h1 = _H2Load(site), _H2Load(site, "--h1")
    time.sleep(1.5)
    for _ in range(2):
        site.add("web", *PKI.leaf(*WEB))
        time.sleep(1.0)
    new = json.loads(site.cli("certs:report", "web", "--format", "json").stdout)
    assert site.peer_fingerprint(WEB[0]) == new["fingerprint"]  # new handshakes see it
    assert h2.stop() > 100 and h1.stop() > 100
    # plain HTTP: remove (200s again), install (301s), replace, remove
    http = _wrk(f"http://127.0.0.1:{site.http}/", 6, WEB[0])
    time.sleep(1.0)
    site.cli("certs:remove", "web")
    time.sleep(1.0)
    site.add("web", *PKI.leaf(*WEB))
    time.sleep(1.0)
    site.add("web", *PKI.leaf(*WEB))
    time.sleep(1.0)
    site.cli("certs:remove", "web")
    out, _ = http.communicate(timeout=30)
    assert http.returncode == 0 and not _errors(out), out
    assert re.search(r"\n\s+[0-9]+ requests in", out), out
    assert site.nginx_pids() == before  # same master, same workers: never reloaded
    res = site.curl("-o", "/dev/null", "-w", "%{http_code}", site.url(tls=False))
    assert res.stdout == "200"  # no certificate: no redirect
    assert site.curl(site.url()).returncode == 35  # and no handshake


def test_remove_and_destroy(site: Site) -> None:
    site.with_cert("web")
    site.cli("certs:remove", "web")
    res = site.cli("certs:remove", "web", check=False)
    _one_line_error(res, "has no certificate")
    site.add("api", *PKI.leaf(API))
    site.cli("daemon:start")  # apps:destroy stops the app's containers through paasd
    site.cli("apps:destroy", "api", "--force")
    assert not (site.root / "certs" / "api").exists()
    site.cli("apps:create", "api")
    assert json.loads(site.cli("certs:report", "api", "--format", "json").stdout) == {
        "app": "api", "enabled": False, "letsencrypt": {"enabled": False, "last_error": ""}}
