"""A Node.js app from ``git push`` to traffic: the Express sample app (express from the
real npm registry, a build step that needs a devDependency) pushed with the real git
client, built by the nodejs buildpack on the stack image and answering through the
instance's nginx; a code change redeploys from the cached node_modules with the npm
registry made unreachable (a config var, which reaches the build as ENV_DIR); bad input
(a malformed package.json, an engines.node the stack cannot meet, a failing build
script) rejects the push with one clear line while the previous release keeps serving.

The sample app lives in tests/integration/buildpacks/apps/node-express (the integration
tests build it too).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from e2e_helpers import AppRepo, Platform, repo_ref

APP_SRC = Path(__file__).resolve().parents[1] / "integration" / "buildpacks" / "apps" / "node-express"
APP = "nodeexpress"


def _wait(platform: Platform, path: str, expect: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            r = platform.get(APP, path)
            last = f"{r.status} {r.body!r}"
            if r.status == 200 and r.body == expect:
                return r.body
        except OSError as err:
            last = repr(err)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no 200 {expect!r} within {timeout}s; last: {last}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> AppRepo:
    path = tmp_path_factory.mktemp("node") / APP
    shutil.copytree(APP_SRC, path)
    r = AppRepo(path, None)
    r.git("init", "-q", "-b", "main")
    r.commit("the Express sample app")
    return r


def _push(platform: Platform, repo: AppRepo) -> tuple[int, str]:
    res = repo.push(platform.http_url(APP))
    return res.returncode, res.stdout + res.stderr


def test_express_app_deploys_and_serves_through_nginx(platform: Platform, repo: AppRepo) -> None:
    code, out = _push(platform, repo)
    assert code == 0, out
    assert "-----> Node.js app detected (Node.js 18." in out, out
    assert "-----> Installing dependencies with npm ci (package-lock.json)" in out
    assert "-----> Running build (npm run build)" in out
    assert "-----> Default web process: npm start" in out
    assert "Application deployed" in out
    _wait(platform, "/", "v1 express 4.21.2\n")
    _wait(platform, "/built.txt", "built by build.js with tiny-invariant, NODE_ENV=production\n")
    _wait(platform, "/dev", "tiny-invariant absent, NODE_ENV=production\n")


def test_a_code_change_redeploys_from_the_cache_without_the_registry(
        platform: Platform, repo: AppRepo) -> None:
    # nothing listens on port 9 of the build container: any download would fail
    platform.cli("config:set", APP, "npm_config_registry=http://127.0.0.1:9/")
    repo.commit("v2", VERSION="v2\n")
    started = time.monotonic()
    code, out = _push(platform, repo)
    took = time.monotonic() - started
    assert code == 0, out
    assert "-----> Restoring node_modules from the cache (package-lock.json unchanged)" in out, out
    assert "Installing dependencies" not in out
    _wait(platform, "/", "v2 express 4.21.2\n")
    print(f"\nnode code-change deploy from the cache: {took:.1f}s")


def _breakage(repo: AppRepo, name: str) -> None:
    pkg = json.loads((repo.path / "package.json").read_text())
    if name == "malformed":
        text = (repo.path / "package.json").read_text()
        repo.write("package.json", text.replace('"private": true,', '"private": true,,'))
    elif name == "engines":
        pkg["engines"]["node"] = ">=22"
        repo.write("package.json", json.dumps(pkg, indent=2) + "\n")
    else:
        repo.write("build.js", "console.error('the build broke'); process.exit(2);\n")


@pytest.mark.parametrize(("name", "line"), [
    ("malformed", (" !     package.json is not valid JSON at line 4, column 19: Unexpected token "
                  ", in JSON at position 68; fix the file and push again")),
    ("engines", (' !     package.json engines.node ">=22" cannot be met: this stack has Node.js '
                "18.")),
    ("build", (" !     the build script failed (npm run build exited 2, output above): fix "
              "scripts.build in package.json")),
])
def test_bad_input_rejects_the_push_and_the_old_release_serves(
        platform: Platform, repo: AppRepo, name: str, line: str) -> None:
    served = platform.get(APP, "/").body
    assert served.endswith(" express 4.21.2\n"), served  # a release of the earlier tests
    deployed = repo_ref(platform.root, APP, "refs/heads/main")
    releases = platform.release_versions(APP)
    _breakage(repo, name)
    repo.commit(f"broken: {name}")
    try:
        code, out = _push(platform, repo)
        assert code != 0, out
        assert "! [remote rejected] main" in out, out
        assert line in out, out
        assert sum(text.startswith("remote:  !") for text in out.splitlines()) == 1, out
        assert "Traceback" not in out
        assert repo_ref(platform.root, APP, "refs/heads/main") == deployed
        assert platform.release_versions(APP) == releases
        assert platform.get(APP, "/").body == served
    finally:
        repo.git("reset", "-q", "--hard", "HEAD~1")
