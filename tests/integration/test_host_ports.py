"""A test instance never needs the ports an installed paas serves (issue 12, 9): with
0.0.0.0:80/443/8022 taken (``host_ports_taken``, as on a host where ``./install.sh`` ran
and an app was pushed), an instance's nginx and git over HTTP start on their own ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from procs import stop, wait_port

HOST_PORTS = (80, 443, 8022)


def test_the_host_ports_are_taken_for_this_module(host_ports_taken: list[int]) -> None:
    for port in HOST_PORTS:
        with socket.socket() as s, pytest.raises(OSError) as ei:
            s.bind(("0.0.0.0", port))
        assert ei.value.errno == 98, port  # EADDRINUSE: held here or by a real paas


def test_nginx_of_an_instance_starts_on_its_own_port(cli, paas_root) -> None:
    port = int(paas_root["PAAS_HTTP_PORT"])
    assert port not in HOST_PORTS and paas_root["PAAS_HTTP_ADDR"] == "127.0.0.1"
    cli("apps:create", "web")
    cli("domains:add", "web", "www.example.com")  # starts the instance's nginx
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "nobody.test"})
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=10)
        assert ei.value.code == 404  # nginx answers; no app has that name
    finally:
        cli("nginx:stop")


def test_git_http_serve_defaults_to_the_instance_port(paas_root) -> None:
    port = int(paas_root["PAAS_HTTP_GIT_PORT"])
    assert port not in HOST_PORTS
    proc = subprocess.Popen([sys.executable, "-m", "paas", "git:http-serve"], env=paas_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_port(port, proc, "paas git:http-serve")
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/x.git/info/refs", timeout=10)
        assert ei.value.code == 401
    finally:
        stop(proc)
        time.sleep(0.1)


def test_an_instance_on_a_host_port_is_refused(instance_tools) -> None:
    """The guard in ``cli_for``: a test that points an instance at port 80 fails at once."""
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        env["PAAS_HTTP_PORT"] = "80"
        with pytest.raises(pytest.fail.Exception, match="PAAS_HTTP_PORT='80'"):
            cli_for(env)("apps:list")
