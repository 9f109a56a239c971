"""The paas instance of the ACME tests, with its pebble: curl and openssl against its
nginx over HTTPS, apps routed without a deploy, ``letsencrypt:list`` as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pebble_server import Pebble

__all__ = ["Instance"]


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

    def listing(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.cli("letsencrypt:list", "--format", "json").stdout)
        return {r["app"]: r for r in rows}

    def challenge_files(self) -> list[str]:
        d = self.root / "nginx" / "acme" / ".well-known" / "acme-challenge"
        return sorted(os.listdir(d)) if d.is_dir() else []
