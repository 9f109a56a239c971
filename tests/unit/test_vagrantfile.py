"""The Vagrantfile forwards only ports something in the VM listens on (issue 12, 9: it
forwarded 2222 for "paas's own sshd, later", which never existed)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from paas.proxy.params import ProxyParams
from paas.receive.urls import DEFAULT_HTTP_PORT

VAGRANTFILE = Path(__file__).resolve().parents[2] / "Vagrantfile"


def test_forwarded_guest_ports_are_nginx_and_git_over_http() -> None:
    text = VAGRANTFILE.read_text()
    guests = {int(p) for p in re.findall(r"guest:\s*(\d+)", text)}
    nginx = next(f.default for f in dataclasses.fields(ProxyParams) if f.name == "http_port")
    assert guests == {nginx, DEFAULT_HTTP_PORT}
    assert "later" not in text
