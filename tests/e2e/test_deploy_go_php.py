"""Go and PHP apps pushed with the real git client, built by their buildpacks on the stack
image and answering through the instance's nginx: a stdlib Go app (first deploy and a
code change), a Go app with a vendored module committed in it, a PHP app (php-fpm behind
nginx, public/ as document root, a composer autoloader in the committed vendor/, the
MySQL extensions). A Go compile error and a PHP app whose composer requirements cannot
be met are rejected with one clear line while the previous release keeps serving.

The sample apps are tests/integration/buildpacks/apps (the integration tests build the
same apps with ``image:build``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from e2e_helpers import AppRepo, Platform, repo_ref
from test_deploy import Poller, deploy, reject, wait_body

APPS = Path(__file__).resolve().parents[1] / "integration" / "buildpacks" / "apps"


def _repo(tmp_path: Path, template: str) -> AppRepo:
    """A git repository of the sample app ``template`` with one commit."""
    path = tmp_path / template
    shutil.copytree(APPS / template, path)
    repo = AppRepo(path, None)
    repo.git("init", "-q", "-b", "main")
    repo.commit("initial")
    return repo


def _edit(repo: AppRepo, name: str, old: str, new: str) -> None:
    text = (repo.path / name).read_text()
    assert old in text, (name, old)
    repo.write(name, text.replace(old, new))


def test_go_app_first_deploy_then_code_change(platform: Platform, tmp_path: Path) -> None:
    repo = _repo(tmp_path, "go-stdlib")
    out = deploy(platform, repo, "goweb")
    assert "Go app detected (go1.19" in out
    assert "Default web process: bin/hello" in out
    assert wait_body(platform, "goweb", "hello from go v1") == 'hello from go v1 (greeting "")\n'

    _edit(repo, "main.go", 'version = "v1"', 'version = "v2"')
    repo.commit("v2")
    with Poller(platform, "goweb") as poll:
        deploy(platform, repo, "goweb")
        wait_body(platform, "goweb", "hello from go v2")
    assert poll.answers and all(s == 200 for s, _ in poll.answers), poll.answers
    assert platform.release_versions("goweb") == [1, 2]


def test_go_app_with_a_vendored_module(platform: Platform, tmp_path: Path) -> None:
    repo = _repo(tmp_path, "go-vendored")
    assert "vendor/example.com/greet/greet.go" in repo.git("ls-files").stdout
    out = deploy(platform, repo, "govendor")
    assert "Using vendored modules (vendor/modules.txt)" in out
    assert wait_body(platform, "govendor", "greet") == "hello from the vendored greet module\n"


def test_go_compile_error_is_rejected_and_the_old_release_serves(
        platform: Platform, tmp_path: Path) -> None:
    repo = _repo(tmp_path, "go-stdlib")
    good = repo.head()
    deploy(platform, repo, "gobroken")
    wait_body(platform, "gobroken", "hello from go v1")
    repo.commit("broken", **{"broken.go": "package main\n\nfunc broken() { nope() }\n"})
    with Poller(platform, "gobroken") as poll:
        out = reject(platform, repo, "gobroken")
        time.sleep(0.5)
    assert "./broken.go:3:17: undefined: nope" in out  # the compiler's output
    problems = [line.rstrip() for line in out.splitlines() if " !     " in line]
    assert len(problems) == 1 and problems[0].endswith(
        "Go build failed: the compiler's output is above; fix it and push again"), problems
    assert poll.answers and {a[1] for a in poll.answers} == {"hello"}, poll.answers
    assert repo_ref(platform.root, "gobroken", "refs/heads/main") == good
    assert platform.release_versions("gobroken") == [1]


def test_php_app_deploys_behind_nginx(platform: Platform, tmp_path: Path) -> None:
    repo = _repo(tmp_path, "php-composer")
    out = deploy(platform, repo, "phpweb")
    assert "PHP app detected (PHP 8.2" in out
    assert "Default web process: nginx + php-fpm" in out
    body = wait_body(platform, "phpweb", "hello from php v1")
    assert body.splitlines()[:2] == ["hello from php v1", "uri /"]
    db = platform.get("phpweb", "/db.php").body.splitlines()
    assert "pdo_mysql loaded" in db and "mysqli loaded" in db, db
    assert db[-1].startswith("pdo error SQLSTATE[HY000] [2002] Connection refused"), db

    platform.cli("config:set", "phpweb", "GREETING=hola")
    wait_body(platform, "phpweb", "greeting hola")
    _edit(repo, "src/Greeter.php", "VERSION = 'v1'", "VERSION = 'v2'")
    repo.commit("v2")
    deploy(platform, repo, "phpweb")
    assert wait_body(platform, "phpweb", "hello from php v2").splitlines()[2] == "greeting hola"


def test_php_unmet_composer_requirements_are_rejected(platform: Platform,
                                                      tmp_path: Path) -> None:
    repo = _repo(tmp_path, "php-path-repo")
    good = repo.head()
    deploy(platform, repo, "phpreq")
    wait_body(platform, "phpreq", "hello from acme/greeting")
    # the locked package now comes from nowhere: no repository, no vendor/
    composer = json.loads((repo.path / "composer.json").read_text())
    del composer["repositories"]
    shutil.rmtree(repo.path / "packages")
    repo.commit("no repository", **{"composer.json": json.dumps(composer, indent=4)})
    with Poller(platform, "phpreq") as poll:
        out = reject(platform, repo, "phpreq")
        time.sleep(0.5)
    problems = [line.rstrip() for line in out.splitlines() if " !     " in line]
    assert len(problems) == 1, problems
    assert problems[0].endswith(
        "composer.lock requires 1 package(s) (acme/greeting) but vendor/ is not committed and "
        "composer.json configures no repository (Packagist is not reachable from this server): "
        "commit vendor/ (composer install --no-dev), or add a repository (path, artifact or "
        "your own Composer repository) to composer.json"), problems
    assert poll.answers and {a[1] for a in poll.answers} == {"hello"}, poll.answers
    assert repo_ref(platform.root, "phpreq", "refs/heads/main") == good
    assert platform.release_versions("phpreq") == [1]
