"""The Node.js buildpack on the real stack: ``image:build --buildpack`` with Debian's
node 18 and npm 9 in ``paas/stack:bookworm``, packages from the real npm registry (through
this machine's TLS-inspecting proxy: npm trusts the host's bundle via
``NODE_EXTRA_CA_CERTS``), then the image runs under paas and answers HTTP.

- the Express sample app (``apps/node-express``: express from npm, a build step that
  needs a devDependency): ``npm ci``, ``npm run build``, devDependencies pruned from the
  image, default web ``npm start`` on ``$PORT``; a code change rebuilds with the npm
  registry unreachable (``npm_config_registry`` at a closed port, a config var) from the
  cached node_modules;
- yarn 1 and pnpm apps (the tools installed with npm into the app's cache), each rebuilt
  offline too;
- bad input fails the build with one clear line and tags nothing: malformed
  package.json, an engines.node the stack cannot meet or that is no range, a lock file
  out of sync with package.json, a failing build script, two lock files;
- no lock file: ``npm install`` with a warning;
- a local HTTPS npm registry signed by a test CA (the operator's bundle has it): npm
  installs from it; with the stack's own bundle instead, npm refuses the certificate.

Downloads: express and its 70 small dependencies (~2 MB), yarn (~1 MB), pnpm (~4 MB)
and two tiny packages, once per run (the npm cache of each app).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import json
import shutil
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import free_port

from tests.integration.build.test_build_ca import HOST_BUNDLE, _certs

APPS = Path(__file__).resolve().parents[1] / "buildpacks" / "apps"
CLOSED_REGISTRY = "npm_config_registry=http://127.0.0.1:9/"  # nothing listens on port 9


class World:
    """The module's instance (the host's bundle plus a test CA as the build CA bundle)
    and a local HTTPS npm registry on the bridge gateway."""

    def __init__(self, cli: Any, registry: Registry) -> None:
        self.cli, self.registry = cli, registry
        self.started: list[str] = []

    def build(self, app: Path, tag: str, *args: str, check: bool = True) -> Any:
        res = self.cli("image:build", "--buildpack", "-t", tag, *args, str(app), check=False,
                       timeout=600)
        if check:
            assert res.returncode == 0, res.stdout + res.stderr
        return res

    def serve(self, image: str) -> str:
        port = free_port()
        cid = self.cli("container:run", "-d", "-p", f"127.0.0.1:{port}:5000",
                       image).stdout.strip()
        self.started.append(cid)
        return f"http://127.0.0.1:{port}"

    def image_tags(self) -> str:
        return str(self.cli("image:ls").stdout)


def _get(url: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- a local npm registry over HTTPS --------------------------------------------------------


def _tarball(name: str, version: str) -> bytes:
    files = {
        "package/package.json": json.dumps({"name": name, "version": version,
                                            "main": "index.js"}).encode(),
        "package/index.js": f"module.exports = 'hello from {name} {version}';\n".encode(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class Registry:
    """``paas-tinygreet`` 1.0.0 as an npm registry: its packument and its tarball."""

    NAME = "paas-tinygreet"

    def __init__(self, ip: str, crt: Path, key: Path) -> None:
        tgz = _tarball(self.NAME, "1.0.0")
        self.requests: list[str] = []
        requests, name = self.requests, self.NAME
        self.server = http.server.ThreadingHTTPServer((ip, 0), http.server.BaseHTTPRequestHandler)
        self.url = f"https://{ip}:{self.server.server_address[1]}/"
        packument = json.dumps({
            "name": name, "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {
                "name": name, "version": "1.0.0",
                "dist": {"tarball": f"{self.url}{name}/-/{name}-1.0.0.tgz",
                         "shasum": hashlib.sha1(tgz).hexdigest(),
                         "integrity": "sha512-" + base64.b64encode(
                             hashlib.sha512(tgz).digest()).decode()}}},
        }).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body, kind = {f"/{name}": (packument, "application/json"),
                              f"/{name}/-/{name}-1.0.0.tgz": (tgz, "application/octet-stream"),
                              }.get(self.path, (b"", ""))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server.RequestHandlerClass = Handler
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(crt), str(key))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _gateway(instance: str) -> str:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", f"pb-{instance}"],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


@pytest.fixture(scope="module")
def world(instance_tools: Any, stack_tar: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    paas_instance, cli_for = instance_tools
    d = tmp_path_factory.mktemp("node-ca")
    bundle = d / "host-bundle.pem"
    with paas_instance() as env:
        env["PAAS_BUILD_CA_BUNDLE"] = str(bundle)
        cli = cli_for(env)
        cli("daemon:start")
        cli("image:import", str(stack_tar), "paas/stack:bookworm", timeout=300)
        cli("container:run", "--rm", "paas/stack:bookworm", "true")  # the bridge from here on
        ip = _gateway(env["PAAS_INSTANCE"])
        ca, crt, key = _certs(d, ip)
        bundle.write_bytes(HOST_BUNDLE.read_bytes() + ca.read_bytes())
        registry = Registry(ip, crt, key)
        w = World(cli, registry)
        try:
            yield w
        finally:
            registry.close()
            for cid in w.started:
                cli("container:rm", "-f", cid, check=False)


@pytest.fixture
def app(tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(APPS / name, dest)
        return dest
    return copy


def _processes(world: World, ref: str) -> dict[str, str]:
    config = json.loads(world.cli("image:inspect", ref).stdout)[0]["Config"]
    labels = config.get("Labels") or {}
    assert labels["io.paas.buildpacks"] == "Node.js"
    return dict(json.loads(labels["io.paas.processes"]))


# --- tests ------------------------------------------------------------------------------------


def test_express_app_builds_serves_and_rebuilds_offline_from_the_cache(
        world: World, app: Callable[[str], Path]) -> None:
    src = app("node-express")
    res = world.build(src, "nodeexpress:v1")
    out = res.stdout
    assert "-----> Node.js app detected (Node.js 18." in out, out
    assert 'engines.node ">=18" accepts Node.js 18.' in out
    assert "-----> Installing dependencies with npm ci (package-lock.json)" in out
    assert "-----> Running build (npm run build)" in out and "wrote public/built.txt" in out
    assert "-----> Pruning devDependencies" in out
    assert _processes(world, "nodeexpress:v1") == {"web": "npm start"}

    url = world.serve("nodeexpress:v1")
    assert _get(url + "/") == "v1 express 4.21.2\n"
    assert _get(url + "/built.txt") == "built by build.js with tiny-invariant, NODE_ENV=production\n"
    # the devDependency served the build and is not in the image; NODE_ENV at run time
    assert _get(url + "/dev") == "tiny-invariant absent, NODE_ENV=production\n"
    listing = world.cli("container:run", "--rm", "nodeexpress:v1", "ls", "-A", "/app").stdout
    assert set(listing.split()) == {".profile.d", "VERSION", "build.js", "node_modules",
                                    "package-lock.json", "package.json", "public", "server.js"}

    # a code change, the registry unreachable: node_modules comes from the cache
    (src / "VERSION").write_text("v2\n")
    res = world.build(src, "nodeexpress:v2", "--build-arg", CLOSED_REGISTRY)
    assert "-----> Restoring node_modules from the cache (package-lock.json unchanged)" \
        in res.stdout, res.stdout
    assert "Installing dependencies" not in res.stdout
    url = world.serve("nodeexpress:v2")
    assert _get(url + "/") == "v2 express 4.21.2\n"
    assert _get(url + "/dev") == "tiny-invariant absent, NODE_ENV=production\n"


@pytest.mark.parametrize("manager", ["yarn", "pnpm"])
def test_yarn_and_pnpm_apps_install_their_tool_with_npm_and_rebuild_offline(
        world: World, app: Callable[[str], Path], manager: str) -> None:
    src = app(f"node-{manager}")
    lock = {"yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml"}[manager]
    res = world.build(src, f"node{manager}:v1")
    out = res.stdout
    assert f"-----> Installing {manager}@" in out and f"-----> Using {manager} " in out, out
    assert f"-----> Installing dependencies with {manager} install --frozen-lockfile" in out
    assert f"-----> Running build ({manager} run build)" in out
    url = world.serve(f"node{manager}:v1")
    assert _get(url + "/") == f"built with {manager}; kleur works; tiny-invariant absent\n"

    (src / "server.js").write_text((src / "server.js").read_text() + "// changed\n")
    res = world.build(src, f"node{manager}:v2", "--build-arg", CLOSED_REGISTRY)
    assert f"Restoring node_modules from the cache ({lock} unchanged)" in res.stdout, res.stdout
    assert f"Installing {manager}@" not in res.stdout  # the tool is cached too
    url = world.serve(f"node{manager}:v2")
    assert _get(url + "/") == f"built with {manager}; kleur works; tiny-invariant absent\n"
    # the tool is in the image for Procfile commands such as "pnpm start"
    version = world.cli("container:run", "--rm", f"node{manager}:v2", manager, "--version")
    assert version.stdout.strip()[0].isdigit(), version.stdout
    # and nothing else the tools wrote under HOME (/app at build time)
    listing = world.cli("container:run", "--rm", f"node{manager}:v2", "ls", "-A", "/app").stdout
    assert set(listing.split()) == {".node-buildpack", ".profile.d", "build.js", "built.txt",
                                    "node_modules", "package.json", "server.js", lock}


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _malformed(src: Path) -> None:
    text = (src / "package.json").read_text()
    (src / "package.json").write_text(text.replace('"private": true,', '"private": true,,'))


def _engines(value: str) -> Callable[[Path], None]:
    def edit(src: Path) -> None:
        _edit_json(src / "package.json", lambda p: p["engines"].update(node=value))
    return edit


def _out_of_sync(src: Path) -> None:
    _edit_json(src / "package.json", lambda p: p["dependencies"].update({"ms": "2.1.3"}))


def _failing_build(src: Path) -> None:
    (src / "build.js").write_text("console.error('build broke'); process.exit(3);\n")


def _two_locks(src: Path) -> None:
    (src / "yarn.lock").write_text("# yarn lockfile v1\n")


def _engines_npm(src: Path) -> None:
    _edit_json(src / "package.json", lambda p: p["engines"].update(npm=">=10"))


def _other_manager(src: Path) -> None:
    _edit_json(src / "package.json", lambda p: p.update(packageManager="pnpm@9.15.9"))


@pytest.mark.parametrize(("break_it", "line"), [
    (_malformed, (" !     package.json is not valid JSON at line 4, column 19: Unexpected token "
                  ", in JSON at position 68; fix the file and push again")),
    (_engines(">=20"), (' !     package.json engines.node ">=20" cannot be met: this stack has '
                        "Node.js 18.")),
    (_engines("latest please"), (' !     package.json engines.node "latest please" is not a '
                                 'version range: use one such as "18.x"')),
    (_out_of_sync, (" !     package-lock.json is out of sync with package.json (Invalid: lock "
                    "file's ms@2.0.0 does not satisfy ms@2.1.3): run 'npm install' and commit "
                    "package-lock.json")),
    (_failing_build, (" !     the build script failed (npm run build exited 3, output above): "
                      "fix scripts.build in package.json")),
    (_two_locks, (" !     the app has more than one lock file (package-lock.json yarn.lock): "
                  "delete the ones of the package managers it does not use")),
    (_engines_npm, (' !     package.json engines.npm ">=10" cannot be met: this stack has npm '
                    '9.2.0; set engines.npm to a range that includes it (e.g. "9.x") or remove it')),
    (_other_manager, (" !     package.json packageManager is pnpm@9.15.9 but the lock file is "
                      "package-lock.json (npm): make them agree")),
], ids=["malformed", "engines", "engines-range", "out-of-sync", "build-fails", "two-locks",
        "engines-npm", "package-manager"])
def test_bad_input_fails_with_one_clear_line_and_tags_nothing(
        world: World, app: Callable[[str], Path], break_it: Callable[[Path], None],
        line: str) -> None:
    src = app("node-express")
    break_it(src)
    res = world.build(src, "nodebad:v1", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert line in out, out
    assert sum(text.startswith(" !") for text in out.splitlines()) == 1, out
    assert "buildpack compile failed" in res.stderr
    assert "Traceback" not in out
    assert "nodebad" not in world.image_tags()


@pytest.mark.parametrize(("berry", "line"), [
    ("lock", (" !     yarn.lock was written by Yarn 2 or later, which this buildpack does not "
              "install: use Yarn 1, npm or pnpm, or build from a Dockerfile")),
    ("packageManager", (" !     package.json packageManager yarn@4.5.0 is Yarn 2 or later, which "
                        "this buildpack does not install: use yarn@1.22.22, npm or pnpm")),
])
def test_yarn_2_and_later_is_refused_in_one_line(
        world: World, app: Callable[[str], Path], berry: str, line: str) -> None:
    src = app("node-yarn")
    if berry == "lock":
        (src / "yarn.lock").write_text('__metadata:\n  version: 8\n  cacheKey: 10c0\n')
    else:
        _edit_json(src / "package.json", lambda p: p.update(packageManager="yarn@4.5.0"))
    res = world.build(src, "nodeberry:v1", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and line in out, out
    assert "nodeberry" not in world.image_tags()


def test_no_lock_file_installs_with_npm_install_and_a_warning(
        world: World, app: Callable[[str], Path]) -> None:
    src = app("node-yarn")
    (src / "yarn.lock").unlink()  # no packageManager either: npm
    res = world.build(src, "nodenolock:v1", "--build-arg", "LD_PRELOAD=/nonexistent.so")
    out = res.stdout + res.stderr
    assert "Config vars not exported to the build (the build sets them): LD_PRELOAD" in out
    assert " !     No lock file (package-lock.json, yarn.lock or pnpm-lock.yaml): each build " \
           "may get other versions; run 'npm install' and commit package-lock.json" in out, out
    assert "-----> Installing dependencies with npm install" in out
    assert "node_modules is not cached: no lock file" in out
    url = world.serve("nodenolock:v1")
    assert _get(url + "/") == "built with yarn; kleur works; tiny-invariant absent\n"


def _registry_app(root: Path, world: World) -> Path:
    src = root / "registry-app"
    src.mkdir()
    name = world.registry.NAME
    (src / "package.json").write_text(json.dumps({
        "name": "registry-app", "version": "1.0.0", "private": True,
        "dependencies": {name: "1.0.0"}}))
    (src / "server.js").write_text(
        "require('http').createServer((q, s) => s.end(require('paas-tinygreet') + '\\n'))"
        ".listen(process.env.PORT);\n")
    return src


def test_npm_trusts_the_hosts_bundle_for_an_https_registry(
        world: World, tmp_path: Path) -> None:
    src = _registry_app(tmp_path, world)
    before = len(world.registry.requests)
    world.build(src, "noderegistry:v1", "--build-arg",
                f"npm_config_registry={world.registry.url}")
    assert "/paas-tinygreet/-/paas-tinygreet-1.0.0.tgz" in world.registry.requests[before:]
    assert _processes(world, "noderegistry:v1") == {"web": "node server.js"}
    assert _get(world.serve("noderegistry:v1") + "/") == "hello from paas-tinygreet 1.0.0\n"


def test_without_the_hosts_bundle_npm_refuses_the_registry(
        world: World, tmp_path: Path) -> None:
    src = _registry_app(tmp_path, world)
    # the stack's own bundle (no test CA in it) for both variables Debian's node reads:
    # NODE_EXTRA_CA_CERTS and, as it uses OpenSSL's default store, SSL_CERT_FILE
    stack_bundle = "/etc/ssl/certs/ca-certificates.crt"
    res = world.build(src, "nodecontrol:v1", "--build-arg",
                      f"npm_config_registry={world.registry.url}", "--build-arg",
                      f"NODE_EXTRA_CA_CERTS={stack_bundle}", "--build-arg",
                      f"SSL_CERT_FILE={stack_bundle}", "--build-arg",
                      "npm_config_fetch_retries=0", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "npm ERR! code UNABLE_TO_VERIFY_LEAF_SIGNATURE" in out, out
    assert "npm install failed" in out
