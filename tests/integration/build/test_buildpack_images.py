"""Buildpack builds end to end: ``image:build --buildpack`` on the stack image, then the
image runs under paas and answers HTTP (the shipped sample apps of
tests/integration/buildpacks/apps).

The app with a dependency installs it from a PEP 503 index this test serves on the
instance's bridge gateway (the build container reaches it over the paas bridge);
a rebuild after the index is stopped must still work (pip's wheel cache in the
app's CACHE_DIR). Failures: no buildpack detects an empty app; a broken Procfile
fails the build and tags nothing.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

APPS = Path(__file__).resolve().parents[1] / "buildpacks" / "apps"


@pytest.fixture(scope="module")
def stack(engine: Any, stack_tar: Path) -> Any:
    engine("image:import", str(stack_tar), "paas/stack:bookworm")
    return engine


def _app(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(APPS / name, dest)
    return dest


def _get(url: str, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, dict(r.headers), r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Served:
    """A detached container of ``image`` with its port 5000 published on loopback."""

    def __init__(self, engine: Any, image: str, port: int) -> None:
        self.engine = engine
        self.cid = engine("container:run", "-d", "-p", f"127.0.0.1:{port}:5000", image).stdout.strip()
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.engine("container:rm", "-f", self.cid)


@pytest.fixture
def serve(stack: Any) -> Iterator[Any]:
    started: list[Served] = []
    ports = iter(range(18500, 18600))

    def run(image: str) -> Served:
        s = Served(stack, image, next(ports))
        started.append(s)
        return s
    yield run
    for s in started:
        s.close()


def _config(engine: Any, ref: str) -> dict[str, Any]:
    return dict(json.loads(engine("image:inspect", ref).stdout)[0]["Config"])


def _labels(engine: Any, ref: str) -> dict[str, str]:
    return dict(_config(engine, ref).get("Labels") or {})


def test_stdlib_wsgi_app_gets_a_gunicorn_web_process(stack: Any, serve: Any, tmp_path: Path) -> None:
    res = stack("image:build", "--buildpack", "-t", "wsgi:v1", str(_app(tmp_path, "python-wsgi")))
    assert "Python" in res.stdout and "Successfully tagged wsgi:v1" in res.stdout
    assert stack("image:log", "wsgi:v1").stdout == res.stdout  # the build log is kept
    processes = json.loads(_labels(stack, "wsgi:v1")["io.paas.processes"])
    assert "gunicorn" in processes["web"]
    cfg = _config(stack, "wsgi:v1")
    assert cfg["WorkingDir"] == "/app" and "PORT=5000" in cfg["Env"]
    status, headers, body = _get(serve("wsgi:v1").url + "/")
    assert status == 200 and headers.get("Server", "").startswith("gunicorn") and body


def test_static_site_is_served_by_nginx(stack: Any, serve: Any, tmp_path: Path) -> None:
    stack("image:build", "--buildpack", "-t", "site:v1", str(_app(tmp_path, "static-site")))
    status, headers, body = _get(serve("site:v1").url + "/")
    assert b"<" in body
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers.get("Server") == "nginx" and "Cache-Control" in headers


def test_procfile_only_app(stack: Any, serve: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "procfile-only")
    stack("image:build", "--buildpack", "-t", "proc:v1", str(app))
    assert json.loads(_labels(stack, "proc:v1")["io.paas.processes"]).keys() >= {"web"}
    status, _h, body = _get(serve("proc:v1").url + "/hello.txt")
    assert status == 200 and body == (app / "hello.txt").read_bytes()


def _bridge_gateway(engine: Any) -> str:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", f"pb-{engine.env['PAAS_INSTANCE']}"],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


def _index(root: Path, gateway: str) -> tuple[http.server.ThreadingHTTPServer, list[str]]:
    from tests.integration.buildpacks.test_buildpacks import write_wheel

    (root / "simple" / "tinygreet").mkdir(parents=True)
    (root / "packages").mkdir()
    wheel = write_wheel(root / "packages")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "simple" / "tinygreet" / "index.html").write_text(
        f'<a href="../../packages/{wheel.name}#sha256={sha}">{wheel.name}</a>\n')
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer((gateway, 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


def test_requirements_from_a_local_index_then_offline_rebuild(
        stack: Any, serve: Any, tmp_path: Path) -> None:
    stack("container:run", "--rm", "debian:bookworm", "true")  # the bridge exists from here on
    server, requests = _index(tmp_path / "index", _bridge_gateway(stack))
    app = _app(tmp_path, "python-requirements")
    url = f"http://{server.server_address[0]}:{server.server_address[1]}/simple/"
    try:
        stack("image:build", "--buildpack", "-t", "req:v1", "--build-arg", f"PIP_INDEX_URL={url}",
              "--build-arg", f"PIP_TRUSTED_HOST={server.server_address[0]}", str(app))
    finally:
        server.shutdown()
        server.server_close()
    assert any("tinygreet" in r for r in requests)
    status, _h, body = _get(serve("req:v1").url + "/")
    assert status == 200 and b"hello from tinygreet" in body
    (app / "app.py").write_text((app / "app.py").read_text() + "\n# changed\n")
    res = stack("image:build", "--buildpack", "-t", "req:v2", "--build-arg", f"PIP_INDEX_URL={url}",
                str(app))  # the index is gone: the wheel cache must serve it
    assert "Successfully tagged req:v2" in res.stdout


def test_no_buildpack_detects_an_empty_app(stack: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("nothing to run\n")
    res = stack("image:build", "--buildpack", "-t", "empty:v1", str(tmp_path / "empty"), check=False)
    assert res.returncode != 0
    from paas.build.buildpacks import DETECT_ORDER

    assert f"no buildpack detected the app (tried: {', '.join(DETECT_ORDER)})" in res.stderr
    assert "empty" not in stack("image:ls").stdout


def test_broken_procfile_fails_and_tags_nothing(stack: Any, tmp_path: Path) -> None:
    res = stack("image:build", "--buildpack", "-t", "broken:v1",
                str(_app(tmp_path, "procfile-broken")), check=False)
    assert res.returncode != 0 and "Procfile line" in res.stdout + res.stderr
    assert "broken" not in stack("image:ls").stdout


def test_unknown_buildpack_and_url_are_refused(stack: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "python-wsgi")
    res = stack("image:build", "--buildpacks", "ruby", str(app), check=False)
    assert res.returncode != 0 and "buildpack ruby not found" in res.stderr
    res = stack("image:build", "--buildpacks", "https://github.com/x/y.git", str(app), check=False)
    assert res.returncode != 0 and "vendor the buildpack" in res.stderr


def _custom_buildpack(root: Path) -> Path:
    """A third-party classic buildpack that needs nothing from the internet."""
    bp = root / "hello-buildpack"
    (bp / "bin").mkdir(parents=True)
    scripts = {
        "detect": '#!/bin/sh\n[ -f "$1/hello.cfg" ] && echo Hello || exit 1\n',
        "compile": ('#!/bin/sh\nset -e\necho "-----> Hello buildpack compiling"\n'
                    'cp "$1/hello.cfg" "$1/greeting.txt"\necho "$(cat "$3/GREETING" 2>/dev/null)" '
                    '>> "$1/greeting.txt"\necho cached > "$2/marker"\n'),
        "release": ("#!/bin/sh\necho '---'\necho 'default_process_types:'\n"
                    "echo '  web: python3 -m http.server $PORT'\n"),
    }
    for name, text in scripts.items():
        (bp / "bin" / name).write_text(text)
        (bp / "bin" / name).chmod(0o755)
    return bp


def test_a_local_third_party_buildpack_named_in_dot_buildpacks(
        stack: Any, serve: Any, tmp_path: Path) -> None:
    bp = _custom_buildpack(tmp_path)
    app = tmp_path / "hello"
    app.mkdir()
    (app / "hello.cfg").write_text("hello from a custom buildpack\n")
    (app / "requirements.txt").write_text("")  # python would detect it: .buildpacks wins
    (app / ".buildpacks").write_text(f"# the buildpacks of this app\n{bp}\n")
    res = stack("image:build", "--buildpack", "-t", "hello:v1", "--build-arg", "GREETING=hi env",
                str(app))
    assert "Hello buildpack compiling" in res.stdout
    assert _labels(stack, "hello:v1")["io.paas.buildpacks"] == "Hello"
    status, _h, body = _get(serve("hello:v1").url + "/greeting.txt")
    assert status == 200 and body == b"hello from a custom buildpack\nhi env\n"
