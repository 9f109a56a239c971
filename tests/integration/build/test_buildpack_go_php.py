"""The Go and PHP buildpacks on the real stack image (Debian's Go, PHP, php-fpm, nginx and
composer): ``image:build --buildpack`` of the sample apps in
tests/integration/buildpacks/apps, then the image runs under paas and answers HTTP.

Go: a stdlib app whose one main package is the default web process (an unchanged
rebuild adds nothing to GOCACHE in the app's CACHE_DIR), a vendored module, modules
through a GOPROXY this test serves on the bridge gateway (then a rebuild with it stopped,
from the module cache), and what must fail with one clear line and tag nothing:
requirements without vendor/ or GOPROXY, a go directive newer than the stack's Go, a
compile error, two main packages without a Procfile.

PHP: php-fpm behind nginx with public/ as document root, the app's php.ini and
.user.ini, config vars, logs on the container's stdout/stderr, the MySQL extensions (a
PDO connection really attempted); an index.php app served from its directory without
its config files; a locked package from a path repository; and the failures: packages
neither vendored nor in a repository, a PHP version or an extension the stack lacks.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

APPS = Path(__file__).resolve().parents[1] / "buildpacks" / "apps"


@pytest.fixture(scope="module")
def stack(engine: Any, stack_tar: Path) -> Any:
    engine("image:import", str(stack_tar), "paas/stack:bookworm", timeout=300)
    return engine


def _app(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(APPS / name, dest)
    return dest


def _get(url: str, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` (any status) once it connects."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Served:
    """A detached container of ``image`` with its port 5000 published on loopback."""

    def __init__(self, engine: Any, image: str, port: int, *env: str) -> None:
        self.engine = engine
        flags = [a for e in env for a in ("-e", e)]
        self.cid = engine("container:run", "-d", *flags, "-p", f"127.0.0.1:{port}:5000",
                          image).stdout.strip()
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        res = self.engine("container:logs", self.cid)
        return str(res.stdout + res.stderr)

    def close(self) -> None:
        self.engine("container:rm", "-f", self.cid)


@pytest.fixture
def serve(stack: Any) -> Iterator[Any]:
    started: list[Served] = []
    ports = iter(range(18600, 18700))

    def run(image: str, *env: str) -> Served:
        s = Served(stack, image, next(ports), *env)
        started.append(s)
        return s
    yield run
    for s in started:
        s.close()


def _processes(engine: Any, ref: str) -> dict[str, str]:
    cfg = json.loads(engine("image:inspect", ref).stdout)[0]["Config"]
    return dict(json.loads(cfg["Labels"]["io.paas.processes"]))


def _build(engine: Any, tag: str, app: Path, *args: str) -> str:
    res = engine("image:build", "--buildpack", "-t", tag, *args, str(app), timeout=600)
    assert f"Successfully tagged {tag}" in res.stdout, res.stdout + res.stderr
    return str(res.stdout)


def _fails(engine: Any, tag: str, app: Path, *args: str) -> list[str]:
    """A build that must fail and tag nothing: its ' !     ' lines."""
    res = engine("image:build", "--buildpack", "-t", tag, *args, str(app), check=False,
                 timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert engine("image:inspect", tag, check=False).returncode != 0  # nothing tagged
    return [line[7:] for line in out.splitlines() if line.startswith(" !     ")]


def _cache(engine: Any, tag: str) -> Path:
    """The CACHE_DIR of builds of ``tag`` outside an app (``image_<repository>``)."""
    return Path(engine.env["PAAS_ROOT"]) / "buildcache" / f"image_{tag.split(':')[0]}"


# --- Go ------------------------------------------------------------------------------------


def test_go_stdlib_app_serves_from_its_binary_and_rebuilds_from_the_cache(
        stack: Any, serve: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "go-stdlib")
    out = _build(stack, "gohello:v1", app)
    assert "-----> Go app detected (go1.19" in out
    assert "No required modules: standard library only" in out
    assert "Default web process: bin/hello (the module's main package)" in out
    assert _processes(stack, "gohello:v1") == {"web": "bin/hello"}
    s = serve("gohello:v1", "GREETING=hola")
    status, _h, body = _get(s.url + "/")
    assert (status, body) == (200, b'hello from go v1 (greeting "hola")\n')

    gocache = _cache(stack, "gohello") / "go" / "build"
    entries = sorted(p.name for p in gocache.rglob("*") if p.is_file())
    assert entries  # the standard library is the stack's, precompiled: only main's
    _build(stack, "gohello:v2", app)
    assert sorted(p.name for p in gocache.rglob("*") if p.is_file()) == entries
    # a code change compiles the changed package only
    (app / "main.go").write_text((app / "main.go").read_text().replace('"v1"', '"v2"'))
    _build(stack, "gohello:v3", app)
    added = {p.name for p in gocache.rglob("*") if p.is_file()} - set(entries)
    assert 0 < len(added) < 20, added
    status, _h, body = _get(serve("gohello:v3").url + "/")
    assert body.startswith(b"hello from go v2")


def test_go_vendored_module_builds_offline(stack: Any, serve: Any, tmp_path: Path) -> None:
    out = _build(stack, "govendor:v1", _app(tmp_path, "go-vendored"))
    assert "Using vendored modules (vendor/modules.txt)" in out
    status, _h, body = _get(serve("govendor:v1").url + "/")
    assert (status, body) == (200, b"hello from the vendored greet module\n")


# A module proxy (GOPROXY protocol: /<module>/@v/list, .info, .mod, .zip) with one module.
GREET_GO_MOD = b"module example.com/greet\n\ngo 1.19\n"
GREET_GO = (b'package greet\n\nfunc Hello(who string) string { return "hello from the " + '
            b'who + " greet module, through GOPROXY" }\n')


def _h1(files: dict[str, bytes]) -> str:
    """Go's dirhash "h1:": sha256 over "<sha256 hex>  <name>\\n" of each file, sorted."""
    summary = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                      for name, data in sorted(files.items()))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def _goproxy_tree(root: Path) -> list[str]:
    """example.com/greet v1.0.0 under ``root``; the go.sum lines for it."""
    prefix = "example.com/greet@v1.0.0/"
    files = {"go.mod": GREET_GO_MOD, "greet.go": GREET_GO}
    d = root / "example.com" / "greet" / "@v"
    d.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(prefix + name, data)
    (d / "v1.0.0.zip").write_bytes(buf.getvalue())
    (d / "v1.0.0.mod").write_bytes(GREET_GO_MOD)
    (d / "v1.0.0.info").write_text('{"Version": "v1.0.0", "Time": "2024-01-01T00:00:00Z"}')
    (d / "list").write_text("v1.0.0\n")
    return [f"example.com/greet v1.0.0 {_h1({prefix + n: b for n, b in files.items()})}",
            f"example.com/greet v1.0.0/go.mod {_h1({'go.mod': GREET_GO_MOD})}"]


def _bridge_gateway(engine: Any) -> str:
    engine("container:run", "--rm", "debian:bookworm", "true")  # the bridge exists from here on
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev",
                          f"pb-{engine.env['PAAS_INSTANCE']}"],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


def _serve_dir(root: Path, host: str) -> tuple[http.server.ThreadingHTTPServer, list[str]]:
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer((host, 0), functools.partial(Handler,
                                                                          directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


def test_go_modules_through_goproxy_then_from_the_module_cache(
        stack: Any, serve: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "go-vendored")
    shutil.rmtree(app / "vendor")
    # without vendor/ and without GOPROXY: one line that says what to do
    problems = _fails(stack, "goproxy:v1", app)
    assert len(problems) == 1, problems
    assert problems[0].startswith("go.mod requires example.com/greet but there is no vendor/ "
                                  "and no GOPROXY")
    assert "run 'go mod vendor' and commit vendor/, or set GOPROXY" in problems[0]

    (app / "go.sum").write_text("\n".join(_goproxy_tree(tmp_path / "proxy")) + "\n")
    server, requests = _serve_dir(tmp_path / "proxy", _bridge_gateway(stack))
    url = f"http://{server.server_address[0]}:{server.server_address[1]}"
    try:
        out = _build(stack, "goproxy:v1", app, "--build-arg", f"GOPROXY={url}")
    finally:
        server.shutdown()
        server.server_close()
    assert "Downloading 1 required module(s) through GOPROXY" in out
    assert "/example.com/greet/@v/v1.0.0.zip" in requests
    status, _h, body = _get(serve("goproxy:v1").url + "/")
    assert (status, body) == (200, b"hello from the vendored greet module, through GOPROXY\n")
    # the proxy is gone: the module cache in CACHE_DIR serves the rebuild
    (app / "main.go").write_text((app / "main.go").read_text() + "\n// changed\n")
    _build(stack, "goproxy:v2", app, "--build-arg", f"GOPROXY={url}")


def test_go_build_errors_are_one_clear_line(stack: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "go-stdlib")
    (app / "broken.go").write_text("package main\n\nfunc broken() { undefinedThing() }\n")
    res = stack("image:build", "--buildpack", "-t", "gobroken:v1", str(app), check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "./broken.go:3:17: undefined: undefinedThing" in out  # the compiler's own words
    assert " !     Go build failed: the compiler's output is above; fix it and push again" in out
    assert "gobroken" not in stack("image:ls").stdout
    (app / "broken.go").unlink()

    gomod = (app / "go.mod").read_text()
    (app / "go.mod").write_text(gomod.replace("go 1.19", "go 1.22\n\ntoolchain go1.22.1"))
    problems = _fails(stack, "gonew:v1", app)
    assert problems[0].startswith("go.mod requires Go 1.22, but the stack has Go 1.19.")
    assert "lower the go directive in go.mod to 'go 1.19'" in problems[1]
    (app / "go.mod").write_text(gomod)

    (app / "cmd" / "worker").mkdir(parents=True)
    (app / "cmd" / "worker" / "main.go").write_text("package main\n\nfunc main() {}\n")
    problems = _fails(stack, "gotwo:v1", app)
    assert problems == [("2 main packages (bin/hello bin/worker) and no Procfile: add a "
                         "Procfile naming the web process, e.g. 'web: bin/hello'")]
    (app / "Procfile").write_text("web: bin/hello\nworker: bin/worker\n")
    _build(stack, "gotwo:v1", app)
    assert _processes(stack, "gotwo:v1") == {"web": "bin/hello", "worker": "bin/worker"}


def test_go_cgo_without_a_c_compiler_builds_pure_go(stack: Any, serve: Any,
                                                     tmp_path: Path) -> None:
    app = _app(tmp_path, "go-stdlib")
    # cgo code with a pure Go fallback: the stack has no gcc, so CGO_ENABLED=0 it is
    (app / "where_cgo.go").write_text('package main\n\n// int answer(void) { return 42; }\n'
                                      'import "C"\n\nconst where = "cgo"\n')
    (app / "where_go.go").write_text('//go:build !cgo\n\npackage main\n\n'
                                     'const where = "pure go"\n')
    (app / "main.go").write_text((app / "main.go").read_text().replace(
        'version = "v1"', 'version = "v1 " + where'))
    out = _build(stack, "gocgo:v1", app)
    assert "cgo needs a C compiler, which the stack does not have: building with CGO_ENABLED=0" in out
    assert _get(serve("gocgo:v1").url + "/")[2].startswith(b"hello from go v1 pure go")
    # asked for by the config: no retry, one line
    problems = _fails(stack, "gocgofail:v1", app, "--build-arg", "CGO_ENABLED=1")
    assert problems == [("cgo needs a C compiler, which the stack does not have: unset the "
                         "CGO_ENABLED config var or set it to 0")]


# --- PHP -----------------------------------------------------------------------------------


def test_php_app_runs_on_php_fpm_behind_nginx(stack: Any, serve: Any, tmp_path: Path) -> None:
    out = _build(stack, "phpapp:v1", _app(tmp_path, "php-composer"))
    assert "-----> PHP app detected (PHP 8.2" in out
    assert "Using the app's php.ini" in out
    assert "composer.json requires no packages (no composer.lock)" in out
    assert "the configuration is valid (document root public)" in out
    assert _processes(stack, "phpapp:v1") == {"web": "bash .php-buildpack/start"}
    s = serve("phpapp:v1", "GREETING=hola")
    status, headers, body = _get(s.url + "/some/route?x=1")
    assert status == 200 and headers["Server"] == "nginx", (headers, s.logs())
    assert "X-Powered-By" not in headers  # expose_php = Off
    assert body.decode().splitlines() == [
        "hello from php v1", "uri /some/route?x=1", "greeting hola",
        "memory_limit 96M",  # the app's php.ini
        "upload_max_filesize 5M",  # public/.user.ini
        "https -"]
    status, headers, body = _get(s.url + "/style.css")  # nginx serves files itself
    assert (status, headers["Content-Type"], body) == (200, "text/css", b"body { color: #333; }\n")
    for path in ("/.user.ini", "/.php-buildpack/start", "/missing.php"):
        assert _get(s.url + path)[0] == 404, path
    # outside the document root: the front controller answers, not the file
    assert _get(s.url + "/composer.json")[2].startswith(b"hello from php v1\nuri /composer.json")
    assert _get(s.url + "/../composer.json")[0] == 400  # nginx refuses to leave the root

    status, _h, body = _get(s.url + "/db.php")
    lines = body.decode().splitlines()
    assert status == 200 and all(line.endswith(" loaded") for line in lines[:8]), lines
    # the driver is there and really connects: refused (nothing listens), not "no driver"
    assert lines[8].startswith("pdo error SQLSTATE[HY000] [2002] Connection refused"), lines

    # logs: nginx's access log on stdout, PHP's error_log() through php-fpm on stderr
    deadline = time.monotonic() + 10
    while "php-composer served /some/route?x=1" not in (logs := s.logs()):
        assert time.monotonic() < deadline, logs
        time.sleep(0.2)
    assert '"GET /style.css HTTP/1.1" 200' in logs
    assert "ready to handle connections" in logs  # php-fpm's own log


def test_php_without_composer_serves_its_directory_but_not_its_config(
        stack: Any, serve: Any, tmp_path: Path) -> None:
    out = _build(stack, "phpplain:v1", _app(tmp_path, "php-plain"))
    assert "document root .)" in out and "composer" not in out.lower()
    s = serve("phpplain:v1")
    assert _get(s.url + "/")[2] == b"plain php 8.2\n"
    for path in ("/php.ini", "/.profile.d/php.sh", "/.php-buildpack/fastcgi_params"):
        assert _get(s.url + path)[0] == 404, path


def test_php_package_from_a_path_repository(stack: Any, serve: Any, tmp_path: Path) -> None:
    out = _build(stack, "phprepo:v1", _app(tmp_path, "php-path-repo"))
    assert "installing from the repositories in composer.json" in out
    assert "Installing acme/greeting (1.0.0)" in out
    assert _get(serve("phprepo:v1").url + "/")[2] == b"hello from acme/greeting\n"


def test_php_requirements_the_server_cannot_meet_are_one_clear_line(
        stack: Any, tmp_path: Path) -> None:
    app = _app(tmp_path, "php-path-repo")
    composer = json.loads((app / "composer.json").read_text())
    # the package is locked, but neither vendored nor in a repository (Packagist is out)
    del composer["repositories"]
    (app / "composer.json").write_text(json.dumps(composer))
    assert _fails(stack, "phpunmet:v1", app) == [(
        "composer.lock requires 1 package(s) (acme/greeting) but vendor/ is not committed "
        "and composer.json configures no repository (Packagist is not reachable from this "
        "server): commit vendor/ (composer install --no-dev), or add a repository (path, "
        "artifact or your own Composer repository) to composer.json")]

    composer["require"]["php"] = "^9.0"
    (app / "composer.json").write_text(json.dumps(composer))
    problems = _fails(stack, "phpunmet:v1", app)
    assert len(problems) == 1 and problems[0].startswith(
        "composer.json requires PHP ^9.0, but the stack has PHP 8.2."), problems

    composer["require"] = {"php": ">=8.1", "ext-imagick": "*"}
    (app / "composer.json").write_text(json.dumps(composer))
    problems = _fails(stack, "phpunmet:v1", app)
    assert len(problems) == 1 and problems[0].startswith(
        "composer.json requires the PHP extension imagick, which the stack's PHP 8.2"), problems

    (app / "composer.json").write_text('{"require": {"php": ">=8.1",}}')
    assert _fails(stack, "phpunmet:v1", app)[0] == (
        "composer.json is not valid JSON: Parse error on line 1: Expected: 'STRING' - It "
        "appears you have an extra trailing comma")
