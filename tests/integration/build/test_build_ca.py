"""Builds behind a TLS-inspecting proxy: build containers trust the host's CA bundle.

A package index served over HTTPS on the instance's bridge gateway with a certificate
from a test CA stands in for a company proxy that re-signs TLS. The instance's
``PAAS_BUILD_CA_BUNDLE`` is a copy of the host's bundle plus that CA (what an operator's
trust store holds). Then:

- a Dockerfile ``RUN`` reaches the index with python's urllib (``SSL_CERT_FILE``) and
  installs from it with pip (``PIP_CERT``), and nothing of the bundle lands in the
  image: no ``/run/paas`` in its filesystem, no CA variable in its config;
- the control: a step that points ``SSL_CERT_FILE`` back at the image's own bundle
  (which lacks the test CA) fails with CERTIFICATE_VERIFY_FAILED;
- a buildpack build installs ``requirements.txt`` from the HTTPS index (pip in the
  compile, no ``PIP_TRUSTED_HOST``).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.buildpacks.test_buildpacks import write_wheel

APPS = Path(__file__).resolve().parents[1] / "buildpacks" / "apps"
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certs(d: Path, ip: str) -> tuple[Path, Path, Path]:
    """A test CA, and a server certificate for ``ip`` signed by it."""
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr",
                                                   "srv.pem"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=paas test inspecting proxy CA", "-keyout", str(ca_key), "-out", str(ca))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", str(key),
             "-out", str(csr))
    ext = d / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


class Index:
    """A PEP 503 index of tinygreet over HTTPS on ``ip``."""

    def __init__(self, root: Path, ip: str, crt: Path, key: Path) -> None:
        (root / "simple" / "tinygreet").mkdir(parents=True)
        (root / "packages").mkdir()
        wheel = write_wheel(root / "packages")
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        (root / "simple" / "tinygreet" / "index.html").write_text(
            f'<a href="../../packages/{wheel.name}#sha256={sha}">{wheel.name}</a>\n')
        (root / "hello").write_text("hello over TLS\n")
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                requests.append(self.path)

        self.server = http.server.ThreadingHTTPServer(
            (ip, 0), functools.partial(Handler, directory=str(root)))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(crt), str(key))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://{ip}:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _gateway(instance: str) -> str:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", f"pb-{instance}"],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


@pytest.fixture(scope="module")
def world(instance_tools: Any, stack_tar: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Index]]:
    paas_instance, cli_for = instance_tools
    d = tmp_path_factory.mktemp("ca")
    bundle = d / "host-bundle.pem"
    with paas_instance() as env:
        env["PAAS_BUILD_CA_BUNDLE"] = str(bundle)
        cli = cli_for(env)
        cli("daemon:start")
        cli("image:import", str(stack_tar), "paas/stack:bookworm")
        cli("container:run", "--rm", "paas/stack:bookworm", "true")  # the bridge from here on
        ip = _gateway(env["PAAS_INSTANCE"])
        ca, crt, key = _certs(d, ip)
        bundle.write_bytes(HOST_BUNDLE.read_bytes() + ca.read_bytes())
        index = Index(d / "index", ip, crt, key)
        try:
            yield cli, index
        finally:
            index.close()


def _build(cli: Any, ctx: Path, dockerfile: str, tag: str, check: bool = True) -> Any:
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return cli("image:build", "--progress", "plain", "-t", tag, str(ctx), check=check)


def test_run_steps_trust_the_hosts_bundle_and_leave_no_trace(
        world: tuple[Any, Index], tmp_path: Path) -> None:
    cli, index = world
    res = _build(cli, tmp_path / "ctx", "FROM paas/stack:bookworm\n"
                 f"RUN python3 -c \"import urllib.request as u; "
                 f"print(u.urlopen('{index.url}/hello').read().decode())\"\n"
                 "RUN python3 -m venv /v && /v/bin/pip install --no-cache-dir -q "
                 f"--index-url {index.url}/simple/ tinygreet "
                 "&& /v/bin/python -c 'import tinygreet; print(tinygreet.GREETING)'\n",
                 "tls:v1")
    assert "hello over TLS" in res.stdout
    assert "hello from tinygreet 1.0" in res.stdout
    assert any("tinygreet" in r for r in index.requests)
    config = json.loads(cli("image:inspect", "tls:v1").stdout)[0]["Config"]
    assert not any(e.startswith(("SSL_CERT_FILE=", "PIP_CERT=")) for e in config.get("Env") or [])
    ls = cli("container:run", "--rm", "tls:v1", "ls", "-A", "/run", check=False)
    assert "paas" not in ls.stdout.split(), ls.stdout  # the mount point is not in the layer


def test_without_the_hosts_bundle_the_step_fails_to_verify(
        world: tuple[Any, Index], tmp_path: Path) -> None:
    cli, index = world
    res = _build(cli, tmp_path / "ctx", "FROM paas/stack:bookworm\n"
                 "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"
                 f"RUN python3 -c \"import urllib.request as u; u.urlopen('{index.url}/hello')\"\n",
                 "tls:control", check=False)
    assert res.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in res.stdout + res.stderr


def test_a_buildpack_compile_installs_from_the_https_index(
        world: tuple[Any, Index], tmp_path: Path) -> None:
    cli, index = world
    app = tmp_path / "app"
    shutil.copytree(APPS / "python-requirements", app)
    before = len(index.requests)
    cli("image:build", "--buildpack", "-t", "tlsbp:v1", "--build-arg",
        f"PIP_INDEX_URL={index.url}/simple/", str(app))
    assert any("tinygreet" in r for r in index.requests[before:])
