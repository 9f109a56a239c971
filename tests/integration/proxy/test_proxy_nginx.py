"""The instance's own nginx, for real: routing, headers, 502/503 pages, safe config
changes, graceful reloads, stop.

Upstreams are python HTTP servers on 127.0.0.1; nginx listens on a free high port
of 127.0.0.1 (``PAAS_HTTP_ADDR``/``PAAS_HTTP_PORT``). Every test stops the nginx
it started and checks that no process of the instance's nginx is left.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prereq import unavailable

from paas.config import load_context
from paas.errors import NotFound
from paas.model import Route, Upstream
from paas.proxy import NginxConfigError, Proxy

NGINX = os.environ.get("PAAS_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(autouse=True)
def _need_nginx() -> None:
    if not os.path.exists(NGINX) and shutil.which(NGINX) is None:
        unavailable("nginx is not installed (apt-get install nginx)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keepalive from nginx's upstream pool

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        server: Backend = self.server  # type: ignore[assignment]
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket(server)
            return
        m = re.search(r"[?&]sleep=([0-9.]+)", self.path)
        if m:
            time.sleep(float(m.group(1)))
        body = json.dumps({"backend": server.name, "path": self.path,
                           "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _websocket(self, server: Backend) -> None:
        """Not real WebSocket framing: a 101, then echo one line (enough to see nginx
        switch protocols end to end)."""
        server.upgrades.append(dict(self.headers.items()))
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.write(b"echo:" + self.rfile.readline())
        self.wfile.flush()
        self.close_connection = True


class Backend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.upgrades: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        made.append(Backend(name))
        return made[-1]

    yield make
    for b in made:
        b.stop()


def _nginx_processes(prefix: str) -> list[int]:
    """Every process whose command line names this instance's nginx dir (master, and
    workers by their parent)."""
    masters = set()
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if entry.isdigit() and prefix in cmd:
            masters.add(int(entry))
    found = set(masters)
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(stat[1]) in masters and stat[0] != "Z":
            found.add(int(entry))
    return sorted(found)


@pytest.fixture
def env(paas_root: dict[str, str]) -> dict[str, str]:
    return dict(paas_root, PAAS_HTTP_ADDR="127.0.0.1", PAAS_HTTP_PORT=str(_free_port()),
                PAAS_NGINX_WORKERS="2", PAAS_NGINX=NGINX)


@pytest.fixture
def proxy(env: dict[str, str]) -> Iterator[Proxy]:
    px = Proxy(load_context(env), env)
    try:
        yield px
    finally:
        left = _nginx_processes(px.params.nginx_dir)
        px.stop()
        for pid in _nginx_processes(px.params.nginx_dir):  # a safety net, reported below
            os.kill(pid, signal.SIGKILL)
        assert not os.path.exists(px.params.nginx_dir)
        assert not _nginx_processes(px.params.nginx_dir), f"nginx left running: {left}"


def get(proxy: Proxy, host: str, path: str = "/", timeout: float = 10
        ) -> tuple[int, str, dict[str, Any]]:
    """(status, body, parsed JSON or {}) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.params.http_port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        res = conn.getresponse()
        body = res.read().decode()
    finally:
        conn.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    return res.status, body, data


def test_routes_by_host_and_forwards_headers(proxy: Proxy,
                                             backends: Callable[[str], Backend]) -> None:
    a, b = backends("a"), backends("b")
    proxy.ensure_running()
    proxy.apply(Route("alpha", ("alpha.test",), (a.upstream,)))
    proxy.apply(Route("beta", ("beta.test", "*.beta.example"), (b.upstream,)))
    assert proxy.is_running()

    assert get(proxy, "alpha.test")[2]["backend"] == "a"
    assert get(proxy, "beta.test")[2]["backend"] == "b"
    assert get(proxy, "x.beta.example")[2]["backend"] == "b"  # wildcard
    status, body, _ = get(proxy, "unknown.test")
    assert status == 404 and "No app is served" in body

    port = proxy.params.http_port
    headers = get(proxy, f"alpha.test:{port}", "/hello?x=1")[2]["headers"]
    assert headers["Host"] == f"alpha.test:{port}"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == str(port)
    assert re.fullmatch(r"t=\d{10}\.\d{3}", headers["X-Request-Start"])
    assert abs(float(headers["X-Request-Start"][2:]) - time.time()) < 60
    assert "Upgrade" not in headers and headers.get("Connection", "") == ""  # keepalive

    access = Path(proxy.params.app_logs("alpha")[0])
    deadline = time.monotonic() + 5  # nginx logs after the response went out
    while "/hello?x=1" not in access.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "/hello?x=1" in access.read_text()
    assert proxy.apps() == ["alpha", "beta"]
    assert "upstream paas-alpha" in proxy.show("alpha")
    proxy.validate()


def test_websocket_upgrade_is_forwarded(proxy: Proxy,
                                        backends: Callable[[str], Backend]) -> None:
    ws = backends("ws")
    proxy.apply(Route("ws", ("ws.test",), (ws.upstream,)))  # starts nginx too
    with socket.create_connection(("127.0.0.1", proxy.params.http_port), timeout=10) as s:
        s.sendall(b"GET /socket HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 101")
        while f.readline() not in (b"\r\n", b""):
            pass
        s.sendall(b"hello\n")
        assert f.readline() == b"echo:hello\n"
    assert ws.upgrades[0]["Upgrade"] == "websocket"
    assert ws.upgrades[0]["Connection"] == "upgrade"


def test_503_without_upstreams_and_502_when_they_fail(
        proxy: Proxy, backends: Callable[[str], Backend]) -> None:
    proxy.apply(Route("idle", ("idle.test",)))
    status, body, _ = get(proxy, "idle.test")
    assert status == 503 and "not running" in body

    dead = _free_port()  # nothing listens there
    proxy.apply(Route("idle", ("idle.test",), (Upstream("127.0.0.1", dead),)))
    status, body, _ = get(proxy, "idle.test")
    assert status == 502 and "did not answer" in body

    # a dead container next to a live one: proxy_next_upstream hides it
    live = backends("live")
    proxy.apply(Route("idle", ("idle.test",), (Upstream("127.0.0.1", dead), live.upstream)))
    assert {get(proxy, "idle.test")[0] for _ in range(10)} == {200}


def test_bad_template_is_never_installed(proxy: Proxy,
                                         backends: Callable[[str], Backend]) -> None:
    a, b = backends("a"), backends("b")
    good = Route("alpha", ("alpha.test",), (a.upstream,))
    proxy.apply(good)
    proxy.apply(Route("beta", ("beta.test",), (b.upstream,)))
    before = proxy.show("alpha")
    bad = Route("alpha", ("alpha.test",), (a.upstream,), template=(
        "server { listen {{ listen }}; server_name {{ domains|join }};\n"
        "  no_such_directive on; }\n"))
    with pytest.raises(NginxConfigError, match="unknown directive") as err:
        proxy.apply(bad)
    assert proxy.params.app_conf("alpha") in err.value.message  # the real name, not the temp
    assert proxy.show("alpha") == before
    assert sorted(os.listdir(proxy.params.apps_dir)) == ["alpha.conf", "beta.conf"]
    assert [f for f in os.listdir(proxy.params.nginx_dir) if f.startswith(".")] == []
    assert get(proxy, "alpha.test")[2]["backend"] == "a"
    assert get(proxy, "beta.test")[2]["backend"] == "b"
    proxy.validate()


def test_reload_keeps_in_flight_and_new_requests(
        proxy: Proxy, backends: Callable[[str], Backend]) -> None:
    a, a2 = backends("a"), backends("a2")
    proxy.apply(Route("alpha", ("alpha.test",), (a.upstream,)))
    slow: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            slow["result"] = get(proxy, "alpha.test", "/?sleep=2", timeout=20)
        except (OSError, http.client.HTTPException) as e:  # reported below
            slow["error"] = e

    failures: list[object] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                status = get(proxy, "alpha.test")[0]
                if status != 200:
                    failures.append(status)
            except OSError as e:
                failures.append(e)

    threads = [threading.Thread(target=slow_request), threading.Thread(target=hammer)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # the slow request is inside the upstream now
    for i in range(5):  # cutover back and forth: every apply is a graceful reload
        proxy.apply(Route("alpha", ("alpha.test",), ((a2 if i % 2 == 0 else a).upstream,)))
    threads[0].join(30)
    stop.set()
    threads[1].join(30)
    assert "error" not in slow, slow
    assert slow["result"][0] == 200 and slow["result"][2]["backend"] == "a"
    assert failures == []
    assert get(proxy, "alpha.test")[2]["backend"] == "a2"


def test_remove_and_stop(proxy: Proxy, backends: Callable[[str], Backend]) -> None:
    a = backends("a")
    proxy.apply(Route("alpha", ("alpha.test",), (a.upstream,)))
    proxy.remove("alpha")
    assert get(proxy, "alpha.test")[0] == 404
    with pytest.raises(NotFound):
        proxy.show("alpha")
    proxy.remove("alpha")  # idempotent

    prefix = proxy.params.nginx_dir
    assert _nginx_processes(prefix)
    proxy.stop()
    assert not proxy.is_running()
    assert _nginx_processes(prefix) == []
    assert not os.path.exists(prefix)
    with pytest.raises(OSError):
        get(proxy, "alpha.test")


def test_cli(env: dict[str, str], proxy: Proxy, backends: Callable[[str], Backend],
             instance_tools: Any) -> None:
    cli = instance_tools[1](env)
    assert "started" in cli("nginx:start").stdout
    assert "already running" in cli("nginx:start").stdout
    proxy.apply(Route("alpha", ("alpha.test",), (backends("a").upstream,)))
    assert "server_name alpha.test;" in cli("nginx:show-config", "alpha").stdout
    assert cli("nginx:show-config", "nope", check=False).returncode == 3
    assert "valid" in cli("nginx:validate").stdout
    assert "reloaded" in cli("nginx:reload").stdout
    assert get(proxy, "alpha.test")[0] == 200
    assert "stopped" in cli("nginx:stop").stdout
    assert not proxy.is_running()
    assert proxy.show("alpha")  # configs stay for the next start
    assert "started" in cli("nginx:reload").stdout
    assert get(proxy, "alpha.test")[0] == 200


def test_logs_over_the_cap_are_rotated_and_nginx_writes_new_ones(
        proxy: Proxy, backends: Callable[[str], Backend]) -> None:
    a = backends("a")
    proxy.apply(Route("alpha", ("alpha.test",), (a.upstream,)))
    for _ in range(20):
        assert get(proxy, "alpha.test")[0] == 200
    logs = Path(proxy.params.logs_dir)
    access = logs / "alpha-access.log"
    deadline = time.monotonic() + 5  # nginx logs a request after its response went out
    while (lines := access.read_text().count("\n")) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lines == 20
    assert proxy.rotate_logs(access.stat().st_size + 1) == []  # under the cap: kept
    rotated = proxy.rotate_logs(100)
    assert "alpha-access.log" in rotated
    assert (logs / "alpha-access.log.1").read_text().count("\n") == lines
    assert get(proxy, "alpha.test")[0] == 200
    deadline = time.monotonic() + 5  # nginx reopens in its workers asynchronously
    sent = 1
    while not (access.exists() and access.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline, "nginx did not reopen its access log"
        assert get(proxy, "alpha.test")[0] == 200
        sent += 1
        time.sleep(0.05)
    # the requests served before a worker reopened went to the rotated file, the rest here
    old = (logs / "alpha-access.log.1").read_text().count("\n")
    assert lines <= old <= lines + sent
    assert old + access.read_text().count("\n") <= lines + sent


def test_a_name_two_servers_claim_is_never_installed(proxy: Proxy,
                                                     backends: Callable[[str], Backend]) -> None:
    """nginx only warns about "conflicting server name" and answers from the first
    server: paas refuses such a config (the domain rules keep it from being rendered;
    this holds for an app template's own server_name too)."""
    a, b = backends("a"), backends("b")
    proxy.ensure_running()
    proxy.apply(Route("alpha", ("alpha.test", "shared.test"), (a.upstream,)))
    with pytest.raises(NginxConfigError, match='conflicting server name "shared.test"') as err:
        proxy.apply(Route("beta", ("beta.test", "shared.test"), (b.upstream,)))
    assert "[warn]" not in err.value.message and "\n" not in err.value.message
    sneaky = Route("beta", ("beta.test",), (b.upstream,), template=(
        "server { listen {{ listen }}; server_name beta.test alpha.test;\n"
        "  location / { return 200 'beta\\n'; } }\n"))
    with pytest.raises(NginxConfigError, match='conflicting server name "alpha.test"'):
        proxy.apply(sneaky)
    assert sorted(os.listdir(proxy.params.apps_dir)) == ["alpha.conf"]
    assert get(proxy, "shared.test")[2]["backend"] == "a"
    assert get(proxy, "alpha.test")[2]["backend"] == "a"
    proxy.apply(Route("beta", ("beta.test",), (b.upstream,)))
    assert get(proxy, "beta.test")[2]["backend"] == "b"
    proxy.validate()
