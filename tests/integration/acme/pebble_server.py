"""Let's Encrypt's test ACME server for the tests: ``pebble`` and ``pebble-challtestsrv``
on loopback with free ports.

pebble ships no certificate for its own TLS: a throwaway CA and a server certificate
for 127.0.0.1 are made here (``ca.pem`` is what ``PAAS_ACME_CA_BUNDLE`` names).
pebble validates HTTP-01 at ``http_port`` (the paas instance's ``PAAS_HTTP_PORT``) and
resolves names through challtestsrv, which answers only the names ``add_a`` gave an
address (no default address: an unknown name does not resolve). Challenges are
really validated (``PEBBLE_VA_ALWAYS_VALID`` is never set); ``PEBBLE_VA_NOSLEEP=1``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from procs import free_port, stop, wait_port

__all__ = ["Pebble", "pebble"]


@dataclass(frozen=True)
class Pebble:
    directory: str  # the ACME directory URL
    ca_bundle: str  # the CA of pebble's own TLS (PAAS_ACME_CA_BUNDLE)
    management: str  # https://127.0.0.1:PORT of pebble's management API
    challtestsrv: str  # http://127.0.0.1:PORT of challtestsrv's management API

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.management + path, context=self._context(),
                                    timeout=10) as r:
            body: bytes = r.read()
            return body

    def issuing_root(self) -> bytes:
        """The root of the certificates pebble issues (new at every start)."""
        return self.get("/roots/0")

    def cert_status(self, serial_hex: str) -> dict[str, object]:
        status: dict[str, object] = json.loads(self.get(f"/cert-status-by-serial/{serial_hex}"))
        return status

    def add_a(self, host: str, address: str = "127.0.0.1") -> None:
        self._challtestsrv("/add-a", {"host": host, "addresses": [address]})

    def clear_a(self, host: str) -> None:
        self._challtestsrv("/clear-a", {"host": host})

    def _challtestsrv(self, path: str, body: dict[str, object]) -> None:
        req = urllib.request.Request(self.challtestsrv + path, data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200, r.status


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert, server key) for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paas test pebble TLS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (d / "ca.pem", d / "cert.pem", d / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(paths[2], 0o600)
    return paths


@contextlib.contextmanager
def pebble(d: Path, http_port: int, *, validity: int = 0) -> Iterator[Pebble]:
    """pebble + challtestsrv in ``d``; ``validity``: certificates' lifetime in seconds
    (0: pebble's default). Both are killed at the end."""
    ca, cert, key = _tls_files(d)
    acme, mgmt, dns, cts = free_port(), free_port(), free_port(), free_port()
    config: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{acme}",
        "managementListenAddress": f"127.0.0.1:{mgmt}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": http_port, "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }
    if validity:
        config["certificateValidityPeriod"] = validity
    (d / "pebble.json").write_text(json.dumps({"pebble": config}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
    procs: list[subprocess.Popen[bytes]] = []
    log = (d / "pebble.log").open("wb")
    try:
        procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-management", f"127.0.0.1:{cts}",
             "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-defaultIPv4", "", "-defaultIPv6", ""],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        wait_port(cts, procs[-1], "pebble-challtestsrv")
        procs.append(subprocess.Popen(
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        wait_port(acme, procs[-1], "pebble")
        yield Pebble(directory=f"https://127.0.0.1:{acme}/dir", ca_bundle=str(ca),
                     management=f"https://127.0.0.1:{mgmt}",
                     challtestsrv=f"http://127.0.0.1:{cts}")
    finally:
        for p in reversed(procs):
            stop(p)
        log.close()
