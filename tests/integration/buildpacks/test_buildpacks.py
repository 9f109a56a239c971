"""The buildpacks in buildpacks/ run for real, the way paas runs them.

Each test copies a sample app from ``apps/`` into a throwaway workspace under /tmp
and runs the real ``bin/detect``, ``bin/compile`` and ``bin/release`` as the
unprivileged user ``nobody`` with HOME pointing nowhere writable, so a script that
writes outside BUILD_DIR, CACHE_DIR or TMPDIR fails here as it would in a
container. Then it starts the web process like paas does (HOME = the app dir,
PORT, the .profile.d scripts sourced, ``bash -c`` in the app dir) and talks HTTP
to it.

The Python app with dependencies installs from a PEP 503 index served by the
test on 127.0.0.1 (the wheel is written by hand); a rebuild with that server
stopped proves the wheel cache downloads nothing. The stack's wheelhouse (gunicorn,
pip, setuptools: paas/build/stackwheels.py) is made from the host's Debian packages
into the workspace and given to the buildpack as ``PAAS_WHEELHOUSE``; pip's own
config files of the host are not read (``PIP_CONFIG_FILE=/dev/null``).

Every started process runs in its own session; teardown stops the whole group
and fails if anything is left. Needs the stack's tools on the host: Debian's
python3 with venv, pip, gunicorn and nginx (install.sh installs them); in CI a
missing tool is a failure, elsewhere a skip.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prereq import unavailable

REPO = Path(__file__).resolve().parents[3]
APPS = Path(__file__).resolve().parent / "apps"
NOBODY = 65534
# The detection order documented in buildpacks/README.md (paas uses the same table).
ORDER = ("static", "nodejs", "python", "procfile")
PATH = "/usr/local/bin:/usr/bin:/bin"
# what build containers get from paas.build.hostca: the host's CA bundle (PyPI through
# a TLS-inspecting proxy)
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV = {k: CA_BUNDLE for k in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
          if os.path.isfile(CA_BUNDLE)}


def _missing_tool() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run the buildpacks as the unprivileged user nobody"
    for tool in ("/usr/bin/python3", "/usr/sbin/nginx"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (run: sudo ./install.sh)"
    probe = subprocess.run(["/usr/bin/python3", "-c", "import ensurepip, venv, gunicorn, pip"],
                           check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        return ("Debian's python3 lacks venv/ensurepip, pip or gunicorn "
                "(python3-venv, python3-pip, gunicorn)")
    return None


@pytest.fixture(autouse=True)
def _stack_tools() -> None:
    reason = _missing_tool()
    if reason:
        unavailable(reason)


# --- workspace: copies of buildpacks and apps owned by nobody ---------------------------


@dataclass
class Web:
    """A started process type: its Popen, port and log files."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Workspace:
    root: Path
    wheelhouse: Path
    webs: list[Web] = field(default_factory=list)
    _count: int = 0

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def mkdir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        os.chown(path, NOBODY, NOBODY)
        return path

    def app(self, name: str) -> Path:
        """A fresh copy of apps/<name>, owned by nobody (a new checkout per build)."""
        self._count += 1
        dest = self.root / f"{name}-{self._count}"
        shutil.copytree(APPS / name, dest)
        _chown_tree(dest)
        return dest

    def env_dir(self, values: dict[str, str]) -> Path:
        """ENV_DIR as paas writes it: one file per config var, no newline added."""
        self._count += 1
        path = self.mkdir(f"env-{self._count}")
        for key, value in values.items():
            (path / key).write_text(value)
        _chown_tree(path)
        return path

    def run(self, *argv: str | Path, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A buildpack script as nobody, with a container-like environment."""
        env = {"PATH": PATH, "HOME": "/nonexistent", "TMPDIR": str(self.tmp), "LANG": "C.UTF-8",
               "PAAS_WHEELHOUSE": str(self.wheelhouse), "PIP_CONFIG_FILE": "/dev/null",
               **CA_ENV}
        return subprocess.run([str(a) for a in argv], check=False, cwd=cwd or self.root,
                              env=env, capture_output=True, text=True, timeout=timeout,
                              user=NOBODY, group=NOBODY, extra_groups=[])

    def buildpack(self, name: str, script: str) -> Path:
        return self.root / "buildpacks" / name / "bin" / script

    def detect(self, name: str, app: Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.buildpack(name, "detect"), app)

    def compile(self, name: str, app: Path, cache: Path,
                env_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
        env_dir = env_dir or self.env_dir({})
        return self.run(self.buildpack(name, "compile"), app, cache, env_dir)

    def release(self, name: str, app: Path) -> dict[str, str]:
        result = self.run(self.buildpack(name, "release"), app)
        assert result.returncode == 0, result.stderr
        return parse_release(result.stdout)

    def start(self, app: Path, command: str) -> Web:
        """Start a process type the way paas does and wait until it answers HTTP."""
        port = _free_port()
        self._count += 1
        log = self.root / f"web-{self._count}.log"
        script = f'for f in .profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; exec {command}'
        env = {"PATH": PATH, "HOME": str(app), "PORT": str(port), "TMPDIR": str(self.tmp),
               "LANG": "C.UTF-8"}
        with log.open("wb") as out:
            proc = subprocess.Popen(["bash", "-c", script], cwd=app, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, user=NOBODY, group=NOBODY,
                                    extra_groups=[])
        web = Web(proc, port, log)
        self.webs.append(web)
        _wait_listening(web)
        return web

    def stop(self, web: Web) -> None:
        """SIGTERM the process group (the master reaps its workers), then SIGKILL."""
        pgid = web.proc.pid
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                web.proc.wait(timeout=grace)
            if _group_gone(pgid, grace):
                return
        raise AssertionError(f"processes of group {pgid} survived SIGKILL")


def _chown_tree(path: Path) -> None:
    os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY, follow_symlinks=False)


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(web: Web, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.proc.poll() is not None:
            raise AssertionError(f"the process exited ({web.proc.returncode}):\n{web.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", web.port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {web.port}:\n{web.output()}")


@pytest.fixture
def ws() -> Iterator[Workspace]:
    from paas.build.stackwheels import populate

    root = Path(tempfile.mkdtemp(prefix="paas-buildpacks-", dir="/tmp"))
    workspace = Workspace(root, root / "wheelhouse")
    try:
        shutil.copytree(REPO / "buildpacks", root / "buildpacks")
        populate("/", str(workspace.wheelhouse))  # as in the stack, from the host's packages
        os.chmod(root, 0o755)
        _chown_tree(root)
        workspace.mkdir("tmp")
        yield workspace
    finally:
        try:
            for web in workspace.webs:
                workspace.stop(web)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# --- HTTP and release helpers --------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def get(web: Web, path: str, headers: dict[str, str] | None = None) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def parse_release(text: str) -> dict[str, str]:
    """The release YAML subset documented in buildpacks/README.md."""
    lines = text.splitlines()
    if lines == ["default_process_types: {}"]:
        return {}
    assert lines[0] == "default_process_types:", text
    types = {}
    for line in lines[1:]:
        match = re.fullmatch(r"  ([A-Za-z0-9_-]+): (\S.*)", line)
        assert match, f"unexpected release line {line!r}"
        types[match[1]] = match[2]
    return types


def parse_procfile(path: Path) -> dict[str, str]:
    types = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            types[name.strip()] = command.strip()
    return types


def build_app(ws: Workspace, buildpack: str, app: Path, cache: Path,
              env_dir: Path | None = None) -> tuple[str, dict[str, str]]:
    """detect + compile + release; returns compile's output and the process types."""
    detected = ws.detect(buildpack, app)
    assert detected.returncode == 0, detected.stderr
    compiled = ws.compile(buildpack, app, cache, env_dir)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    types = ws.release(buildpack, app)
    if (app / "Procfile").is_file():
        types |= parse_procfile(app / "Procfile")  # paas merges the Procfile over defaults
    return compiled.stdout, types


# --- a local PEP 503 package index ------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def write_wheel(directory: Path) -> Path:
    """tinygreet 1.0 as a pure-Python wheel, zipped by hand."""
    dist_info = "tinygreet-1.0.dist-info"
    files = {
        "tinygreet.py": b'GREETING = "hello from tinygreet 1.0"\n',
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\nName: tinygreet\nVersion: 1.0\n"
                                 b"Summary: A test package served from a local index\n",
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: paas-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    wheel = directory / "tinygreet-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return wheel


@dataclass
class Index:
    server: http.server.ThreadingHTTPServer
    thread: threading.Thread
    requests: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple/"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join()
            self.server.server_close()


@pytest.fixture
def index(ws: Workspace) -> Iterator[Index]:
    root = ws.root / "index"
    (root / "simple" / "tinygreet").mkdir(parents=True)
    (root / "packages").mkdir()
    wheel = write_wheel(root / "packages")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "simple" / "index.html").write_text(
        '<!DOCTYPE html><html><body><a href="tinygreet/">tinygreet</a></body></html>\n')
    (root / "simple" / "tinygreet" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../packages/{wheel.name}#sha256={sha}">'
        f"{wheel.name}</a></body></html>\n")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    idx = Index(server, thread, requests)
    try:
        yield idx
    finally:
        idx.stop()


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("buildpack", ORDER)
def test_detect_rejects_an_empty_dir(ws: Workspace, buildpack: str) -> None:
    result = ws.detect(buildpack, ws.mkdir("empty"))
    assert result.returncode == 1
    assert result.stdout == ""


@pytest.mark.parametrize(("app", "expected"), [
    ("python-wsgi", "python"), ("python-requirements", "python"),
    ("static-site", "static"), ("procfile-only", "procfile"), ("procfile-broken", "procfile"),
    ("node-express", "nodejs"),
])
def test_the_first_detecting_buildpack_in_order_wins(ws: Workspace, app: str,
                                                      expected: str) -> None:
    names = {"static": "Static", "nodejs": "Node.js", "python": "Python", "procfile": "Procfile"}
    path = ws.app(app)
    for buildpack in ORDER:
        result = ws.detect(buildpack, path)
        if result.returncode == 0:
            assert (buildpack, result.stdout) == (expected, names[expected] + "\n")
            return
        assert result.returncode == 1, result.stderr
    pytest.fail(f"no buildpack detected {app}")


def test_python_stdlib_wsgi_app_runs_on_the_stack_gunicorn(ws: Workspace) -> None:
    app = ws.app("python-wsgi")
    # no index at all: the stack's gunicorn comes from its wheelhouse
    output, types = build_app(ws, "python", app, ws.mkdir("cache"),
                              ws.env_dir({"PIP_NO_INDEX": "1"}))

    assert "-----> requirements.txt lists no packages" in output
    assert "-----> Installing gunicorn 20.1.0 from the stack (the app does not list gunicorn)" \
        in output
    assert "-----> Detected WSGI entry point wsgi:application" in output
    assert types["web"] == ("python -m gunicorn --bind 0.0.0.0:$PORT --workers "
                            "${WEB_CONCURRENCY:-2} --access-logfile - wsgi:application")
    assert (app / ".venv" / "bin" / "python").exists()
    # in the venv, with its console script; the system's site-packages are not seen
    assert list((app / ".venv" / "lib").glob("python3.*/site-packages/gunicorn/__init__.py"))
    assert (app / ".venv" / "bin" / "gunicorn").read_text().startswith(
        f"#!{app}/.venv/bin/python")
    assert "include-system-site-packages = false" in (app / ".venv" / "pyvenv.cfg").read_text()
    profile = (app / ".profile.d" / "python.sh").read_text()
    assert 'export PATH="$HOME/.venv/bin:$PATH"' in profile
    assert "PYTHONUNBUFFERED=1" in profile

    web = ws.start(app, types["web"])
    resp = get(web, "/")
    assert (resp.status, resp.text) == (200, "hello from a stdlib wsgi app\n")


def test_python_requirements_from_a_local_index_then_an_offline_rebuild(
        ws: Workspace, index: Index) -> None:
    cache = ws.mkdir("cache")
    env_dir = ws.env_dir({"PIP_INDEX_URL": index.url, "PIP_TRUSTED_HOST": "127.0.0.1"})
    app = ws.app("python-requirements")
    output, types = build_app(ws, "python", app, cache, env_dir)

    assert "-----> Installing requirements with pip\n" in output
    assert "-----> Detected WSGI entry point app:app" in output
    assert "/packages/tinygreet-1.0-py3-none-any.whl" in index.requests
    assert list((cache / "wheels").glob("*/tinygreet-1.0-py3-none-any.whl"))
    assert (cache / "pip").is_dir()
    web = ws.start(app, types["web"])
    assert get(web, "/").text == "hello from tinygreet 1.0\n"
    ws.stop(web)

    # Same requirements, fresh checkout, same cache, no index at all.
    index.stop()
    served = len(index.requests)
    rebuilt = ws.app("python-requirements")
    output, types = build_app(ws, "python", rebuilt, cache, env_dir)

    assert "from the wheel cache (requirements unchanged)" in output
    assert len(index.requests) == served
    web = ws.start(rebuilt, types["web"])
    assert get(web, "/").text == "hello from tinygreet 1.0\n"


def test_python_app_with_a_procfile_gets_no_default_web(ws: Workspace) -> None:
    app = ws.app("python-wsgi")
    (app / "Procfile").write_text("web: python -m gunicorn --bind 0.0.0.0:$PORT wsgi:application\n")
    assert ws.release("python", app) == {}


def test_static_site(ws: Workspace) -> None:
    app = ws.app("static-site")
    output, types = build_app(ws, "static", app, ws.mkdir("cache"))

    assert "ignoring 'https_only'" in output
    assert "-----> nginx -t: the configuration is valid" in output
    assert types == {"web": "bash .static-buildpack/start"}
    web = ws.start(app, types["web"])

    home = get(web, "/")
    assert home.status == 200 and "static home page" in home.text
    assert home.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert home.headers["Cache-Control"] == "no-cache"
    assert home.headers["ETag"] and home.headers["Last-Modified"]

    css = get(web, "/css/site.css", {"Accept-Encoding": "gzip"})
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.headers["Content-Encoding"] == "gzip"
    assert b"font-family" in gzip.decompress(css.body)
    assert css.headers["Cache-Control"] == "public, max-age=3600"

    asset = get(web, "/assets/app.js?v=2")  # header rule "/assets/**"
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert asset.headers["Content-Security-Policy"] == "default-src 'self'; img-src *"
    assert "Content-Security-Policy" not in get(web, "/css/site.css").headers

    assert "about page" in get(web, "/about").text  # clean_urls
    spa = get(web, "/app/projects/42/edit")  # route "/app/**" -> app/index.html
    assert spa.status == 200 and "spa shell" in spa.text
    redirect = get(web, "/old-page")
    assert (redirect.status, redirect.headers["Location"]) == (302, "/about")

    for path in ("/missing.css", "/.env", "/.static-buildpack/start",
                 "/.static-buildpack/server.conf", "/../static.json"):
        resp = get(web, path)
        assert resp.status in (400, 404), path
        assert "SECRET" not in resp.text, path
    assert "custom not found page" in get(web, "/missing.css").text

    ws.stop(web)
    assert re.search(r'"GET /about HTTP/1.1" 200', web.output())  # access log on stdout


def _static_app(ws: Workspace, config: object) -> Path:
    app = ws.mkdir(f"static-{len(list(ws.root.iterdir()))}")
    (app / "index.html").write_text("<!doctype html><title>x</title>hello\n")
    (app / "static.json").write_text(json.dumps(config))
    _chown_tree(app)
    return app


@pytest.mark.parametrize(("config", "message"), [
    ({"headers": {"/": {"X-Test": "a } server { listen 1; }"}}},
     "static.json: headers['/']['X-Test'] value: 'a } server { listen 1; }' is not"),
    ({"headers": {"/": {"X-Test": "a\nadd_header X-Evil 1"}}}, "headers['/']['X-Test'] value"),
    ({"headers": {"/": {"X-Test": "$host"}}}, "without '$'"),
    ({"headers": {"/": {"X-Bad Name": "1"}}}, "is not a header name"),
    ({"headers": {"/a;b": {"X-Test": "1"}}}, "headers['/a;b']: '/a;b' is not a URL path"),
    ({"routes": {"/**": "index.html; return 200"}}, "routes['/**']"),
    ({"routes": {"/**": "missing.html"}}, "'missing.html' does not exist"),
    ({"redirects": {"/x": {"url": "/y\"; return 200 \"z"}}}, "redirects['/x']['url']"),
    ({"redirects": {"/x": {"url": "/y", "status": 200}}}, "is not one of"),
    ({"root": "../"}, "root: '../' must be relative"),
    ({"error_page": ".env"}, "no segment may start with '.'"),
    ({"clean_urls": "yes"}, "clean_urls: 'yes' is not true or false"),
])
def test_static_compile_refuses_values_that_could_inject_config(
        ws: Workspace, config: object, message: str) -> None:
    app = _static_app(ws, config)
    result = ws.compile("static", app, ws.mkdir("cache"))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Fix static.json" in result.stderr


def test_static_header_values_are_quoted_not_parsed(ws: Workspace) -> None:
    value = 'x" always; add_header X-Injected "1'
    app = _static_app(ws, {"headers": {"/**": {"X-Quoted": value}}})
    _, types = build_app(ws, "static", app, ws.mkdir("cache"))
    resp = get(ws.start(app, types["web"]), "/")
    assert resp.headers["X-Quoted"] == value
    assert "X-Injected" not in resp.headers
    assert get(ws.webs[-1], "/static.json").status == 404  # root is the app dir here


def test_procfile_app(ws: Workspace) -> None:
    app = ws.app("procfile-only")
    output, types = build_app(ws, "procfile", app, ws.mkdir("cache"))

    assert "-----> Procfile declares types -> web" in output
    assert ws.release("procfile", app) == {}
    web = ws.start(app, types["web"])
    resp = get(web, "/hello.txt")
    assert (resp.status, resp.text) == (200, "hello from a procfile app\n")


def test_broken_procfile_fails_compile_with_the_line(ws: Workspace) -> None:
    app = ws.app("procfile-broken")
    result = ws.compile("procfile", app, ws.mkdir("cache"))
    assert result.returncode == 1
    assert "Procfile line 2: expected 'name: command', got: this line has no process type" \
        in result.stderr
