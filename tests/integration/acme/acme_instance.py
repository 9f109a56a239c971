"""The paas instance of the ACME tests, with its pebble (``acme_instance``): curl and
openssl against its nginx over HTTPS, apps routed without a deploy, ``letsencrypt:list``
as JSON."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pebble_server import Pebble, pebble
from prereq import unavailable

__all__ = ["Instance", "acme_instance"]


class Instance:
    def __init__(self, env: dict[str, str], cli: Any, peb: Pebble, tmp: Path) -> None:
        self.env, self.cli, self.pebble, self.tmp = env, cli, peb, tmp
        self.root = Path(env["PAAS_ROOT"])
        (tmp / "root.pem").write_bytes(peb.issuing_root())

    def curl(self, host: str, path: str = "/") -> subprocess.CompletedProcess[str]:
        port = self.env["PAAS_HTTPS_PORT"]
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", str(self.tmp / "root.pem"),
             "--resolve", f"{host}:{port}:127.0.0.1", "-o", "/dev/null",
             "-w", "%{http_code} %{ssl_verify_result}", f"https://{host}:{port}{path}"],
            capture_output=True, text=True, check=False)

    def serial(self, host: str) -> str:
        """The serial number (hex) of the certificate nginx presents for ``host``."""
        port = self.env["PAAS_HTTPS_PORT"]
        hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                                "-servername", host], input="", capture_output=True,
                               text=True, timeout=10, check=False)
        out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=hello.stdout,
                             capture_output=True, text=True, check=False)
        return out.stdout.strip().removeprefix("serial=").lower()

    def app(self, name: str, *domains: str) -> None:
        self.cli("apps:create", name)
        self.cli("domains:set", name, *domains)
        self.cli("nginx:set", name, "client-max-body-size", "2m")  # renders its vhost
        for d in domains:
            self.pebble.add_a(d)

    def issued(self, name: str, *domains: str) -> None:
        """``name`` (created with ``domains`` if need be) holds a certificate from pebble,
        whichever tests ran before."""
        row = self.listing().get(name)
        if row and row["enabled"] and row["source"] == "acme":
            return
        if self.cli("apps:info", name, check=False).returncode != 0:
            self.app(name, *domains)
        self.cli("letsencrypt:enable", name)

    def listing(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.cli("letsencrypt:list", "--format", "json").stdout)
        return {r["app"]: r for r in rows}

    def challenge_files(self) -> list[str]:
        d = self.root / "nginx" / "acme" / ".well-known" / "acme-challenge"
        return sorted(os.listdir(d)) if d.is_dir() else []


@contextlib.contextmanager
def acme_instance(instance_tools: Any, tmp: Path, *, validity: int | None = None,
                  **env: str) -> Iterator[Instance]:
    """A paas instance (nginx started) whose letsencrypt server is a pebble of its own
    (certificates valid ``validity`` seconds when given), ``env`` added to its environment;
    paasd and nginx stopped at the end."""
    for tool in ("pebble", "pebble-challtestsrv", "curl", "openssl"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (test.sh installs pebble)")
    paas_instance, cli_for = instance_tools
    extra = {} if validity is None else {"validity": validity}
    with paas_instance() as inst_env, pebble(tmp, int(inst_env["PAAS_HTTP_PORT"]),
                                             **extra) as peb:
        inst_env.update(PAAS_ACME_CA_BUNDLE=peb.ca_bundle, **env)
        cli = cli_for(inst_env)
        cli("nginx:start")
        cli("letsencrypt:set", "--global", "email", "ops@example.com")
        cli("letsencrypt:set", "--global", "server", peb.directory)
        try:
            yield Instance(inst_env, cli, peb, tmp)
        finally:
            cli("daemon:stop", check=False)
            cli("nginx:stop", check=False)
