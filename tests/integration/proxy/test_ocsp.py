"""OCSP stapling for real: a test CA whose leaf names a responder, ``openssl ocsp``
answering on loopback, a paas instance's nginx.

A certificate naming a responder is stapled (``openssl s_client -status`` shows a
successful, good response) and its vhost loads it statically; installing, replacing
and removing such a certificate reloads nginx (new workers); a certificate without a
responder has no stapled response, stays per handshake (the vhost's variable) and
its replacement never reloads nginx; ``nginx:set APP ocsp-stapling false`` keeps a
responder's certificate per handshake; ``certs:report`` says which.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from pki import NOW, Pki, key_pem, pem
from prereq import require
from procs import free_port
from test_https import WEB, Site

PKI = Pki()


class Responder:
    """``openssl ocsp`` for the test intermediate's leaves, signing with its key."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index = tmp / "index.txt"
        self.index.write_text("")
        # every leaf has the same subject: openssl's index refuses that by default
        (tmp / "index.txt.attr").write_text("unique_subject = no\n")
        (tmp / "ca.pem").write_bytes(pem(PKI.inter))
        (tmp / "ca.key").write_bytes(key_pem(PKI.inter_key))
        self.proc: subprocess.Popen[bytes] | None = None
        self._start()

    def _start(self) -> None:
        """(Re)start the responder and wait until it listens with its index loaded (it
        says so; a probing connection would hang it: it serves one at a time)."""
        self.stop()
        log = self.tmp / "ocsp.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["openssl", "ocsp", "-index", str(self.index), "-port", str(self.port),
                 "-rsigner", str(self.tmp / "ca.pem"), "-rkey", str(self.tmp / "ca.key"),
                 "-CA", str(self.tmp / "ca.pem"), "-ndays", "1"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while b"waiting for OCSP client connections" not in log.read_bytes():
            assert time.monotonic() < deadline and self.proc.poll() is None, log.read_text()
            time.sleep(0.05)

    def leaf(self, *names: str, ocsp: str | None = None) -> tuple[bytes, bytes]:
        """A leaf naming this responder (or ``ocsp``), listed as valid in the index."""
        chain, key = PKI.leaf(*names, ocsp=self.url if ocsp is None else ocsp)
        cert = x509.load_pem_x509_certificate(chain)
        serial = format(cert.serial_number, "X")
        serial = "0" * (len(serial) % 2) + serial
        expiry = (NOW + timedelta(days=90)).strftime("%y%m%d%H%M%SZ")
        with self.index.open("a") as f:
            f.write(f"V\t{expiry}\t\t{serial}\tunknown\t/CN={names[0]}\n")
        self._start()  # openssl ocsp reads its index once (3.0 exits when it changes)
        return chain, key

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(instance_tools: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Site, Responder]]:
    require("nginx", "curl", "openssl", root=True)
    paas_instance, cli_for = instance_tools
    responder = Responder(tmp_path_factory.mktemp("ocsp"))
    with paas_instance() as env:
        cli = cli_for(env)
        s = Site(env, cli, tmp_path_factory.mktemp("https"))
        try:
            cli("apps:create", "web")
            cli("domains:add", "web", *WEB)  # starts nginx
            s.route_web()
            yield s, responder
        finally:
            s.backend.shutdown()
            responder.stop()
            cli("nginx:stop", check=False)


def _status(site: Site) -> str:
    res = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.https}",
                          "-servername", WEB[0], "-status"], input="", capture_output=True,
                         text=True, timeout=10, check=False)
    return res.stdout


def _stapled(site: Site, seconds: float = 10.0) -> str:
    """s_client's output once nginx staples (it fetches on the first handshakes)."""
    deadline = time.monotonic() + seconds
    while True:
        out = _status(site)
        if "OCSP Response Status: successful" in out:
            return out
        if time.monotonic() > deadline:
            log = Path(site.proxy.params.error_log).read_text()[-2000:]
            return out + "\nnginx's error log:\n" + log
        time.sleep(0.3)


def _fingerprint(site: Site) -> str:
    """sha256 of the certificate nginx serves for WEB[0] (trusting this module's root)."""
    ctx = ssl.create_default_context(cadata=PKI.root_pem.decode())
    with socket.create_connection(("127.0.0.1", site.https), 5) as sock, \
            ctx.wrap_socket(sock, server_hostname=WEB[0]) as t:
        der = t.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def _https_server(site: Site) -> str:
    return site.cli("nginx:show-config", "web").stdout.split("ssl http2;", 1)[1]


def _report(site: Site) -> dict[str, Any]:
    return dict(json.loads(site.cli("certs:report", "web", "--format", "json").stdout))


def test_a_responders_certificate_is_stapled_and_reloads(site: tuple[Site, Responder]) -> None:
    s, responder = site
    before = s.nginx_pids()
    s.add("web", *responder.leaf(*WEB))
    after = s.nginx_pids()
    assert after[0] == before[0] and not after[1] & before[1]  # a graceful reload
    vhost = _https_server(s)
    assert "$paas_tls" not in vhost and "ssl_stapling on;" in vhost
    assert "ssl_stapling_verify on;" in vhost and "chain.pem" in vhost
    assert "resolver " not in vhost  # an IP-literal responder needs none
    chain = (s.root / "certs" / "web" / "chain.pem").read_bytes()
    assert chain == pem(PKI.inter) and b"PRIVATE" not in chain
    for name in ("chain.pem", "ocsp"):  # root-only: nginx's master reads them
        st = (s.root / "certs" / "web" / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0), name
    out = _stapled(s)
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    report = _report(s)
    assert report["ocsp_stapling"] == {"enabled": True, "responder": responder.url,
                                       "opted_out": False}
    table = s.cli("certs:report", "web").stdout
    assert f"yes ({responder.url}" in table
    # replaced by another stapled one: a reload, and the new one is stapled too
    s.add("web", *responder.leaf(*WEB))
    assert not s.nginx_pids()[1] & after[1]
    assert _fingerprint(s) == _report(s)["fingerprint"]
    out = _stapled(s)
    assert "Cert Status: good" in out, out
    s.cli("nginx:validate")


def test_without_a_responder_per_handshake_and_no_reload(site: tuple[Site, Responder]
                                                         ) -> None:
    s, responder = site
    s.add("web", *responder.leaf(*WEB))  # stapled first
    s.add("web", *PKI.leaf(*WEB))  # from stapled to per handshake: a reload
    vhost = _https_server(s)
    assert "$paas_tls" in vhost and "ssl_stapling" not in vhost
    assert not (s.root / "certs" / "web" / "chain.pem").exists()
    before = s.nginx_pids()
    for _ in range(2):
        s.add("web", *PKI.leaf(*WEB))
    assert s.nginx_pids() == before  # same master, same workers: never reloaded
    assert _fingerprint(s) == _report(s)["fingerprint"]
    out = _status(s)
    assert "OCSP response: no response sent" in out, out
    assert "no (no responder: loaded per handshake)" in s.cli("certs:report", "web").stdout
    assert _report(s)["ocsp_stapling"]["enabled"] is False


def test_opt_out_and_remove(site: tuple[Site, Responder]) -> None:
    s, responder = site
    s.add("web", *responder.leaf(*WEB))
    s.cli("nginx:set", "web", "ocsp-stapling", "false")
    vhost = _https_server(s)
    assert "$paas_tls" in vhost and "ssl_stapling" not in vhost
    assert _report(s)["ocsp_stapling"] == {"enabled": False, "responder": responder.url,
                                           "opted_out": True}
    assert "ocsp-stapling false" in s.cli("certs:report", "web").stdout
    before = s.nginx_pids()
    s.add("web", *responder.leaf(*WEB))  # the vhost does not change: no reload
    assert s.nginx_pids() == before
    s.cli("nginx:set", "web", "ocsp-stapling")  # back to the default: stapled
    assert "ssl_stapling on;" in _https_server(s)
    assert "Cert Status: good" in _stapled(s)
    # removal: the vhost goes back to per handshake before the file goes
    s.cli("certs:remove", "web")
    assert "$paas_tls" in _https_server(s)
    assert not any((s.root / "certs" / "web").iterdir())
    s.cli("nginx:validate")
    assert s.curl(s.url()).returncode == 35  # no certificate: no handshake
    bad = s.add("web", *responder.leaf(*WEB, ocsp="ftp://127.0.0.1/x"), check=True)
    assert bad.returncode == 0 and _report(s)["ocsp_stapling"]["responder"] == ""


def test_a_named_responder_gets_a_resolver(site: tuple[Site, Responder]) -> None:
    from paas.proxy.stapling import nameservers

    s, responder = site
    s.add("web", *responder.leaf(*WEB, ocsp="http://ocsp.example.test/"))
    vhost = _https_server(s)
    assert "ssl_stapling on;" in vhost
    servers = nameservers()
    if servers:
        assert "resolver " in vhost and all(ip in vhost for ip in servers[:1])
    else:
        assert "resolver " not in vhost
    s.cli("nginx:validate")  # nginx accepts it (the name does not resolve: no staple)
    s.cli("certs:remove", "web")
