"""The Python buildpack for real (issue 13): the app's venv and nothing else, its package
managers, the Python version it asks for, and the config vars that reach its build.

Run like test_buildpacks.py (whose workspace, helpers and local index this module
uses): the real scripts as ``nobody`` on the host, Debian's python3 standing in for the
stack's. The local index serves ``tinygreet`` (written by hand), gunicorn packed from
the host's Debian files (as the stack's wheelhouse is), and Debian's setuptools and
wheel, so the pip paths need no internet. The Poetry and uv apps are the e2e sample
apps (tests/e2e/apps): those tools and Flask come from the real PyPI, and their rebuild
runs with ``HTTPS_PROXY``/``HTTP_PROXY`` pointing at a closed port (from ENV_DIR, as
config vars), so any download would fail it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_buildpacks import (
    Index,
    Workspace,
    _chown_tree,
    build_app,
    get,
    index,
    write_wheel,
    ws,
)

__all__ = ["index", "ws"]  # fixtures used here

E2E_APPS = Path(__file__).resolve().parents[2] / "e2e" / "apps"
APPS_DIR = Path(__file__).resolve().parent / "apps"
HOST_PYTHON = subprocess.run(["/usr/bin/python3", "-c", "import platform; print(platform.python_version())"],
                             check=True, capture_output=True, text=True).stdout.strip()
DEAD_PROXY = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(" !     ")]


# --- a local index with gunicorn, setuptools and wheel ----------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture
def full_index(ws: Workspace) -> Iterator[Index]:
    """A PEP 503 index of tinygreet, gunicorn, setuptools and wheel on 127.0.0.1."""
    from paas.build.stackwheels import make_wheel

    root = ws.root / "full-index"
    packages = root / "packages"
    packages.mkdir(parents=True)
    wheels = [write_wheel(packages)]
    for name in ("gunicorn", "setuptools"):
        src = next(ws.wheelhouse.glob(f"{name}-*.whl"))
        wheels.append(Path(shutil.copy(src, packages)))
    wheels.append(Path(make_wheel("/usr/lib/python3/dist-packages", "wheel", str(packages))))
    for wheel in wheels:
        project = root / "simple" / _norm(wheel.name.split("-")[0])
        project.mkdir(parents=True)
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        (project / "index.html").write_text(
            f'<a href="../../packages/{wheel.name}#sha256={sha}">{wheel.name}</a>\n')
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


def _index_env(ws: Workspace, idx: Index, **more: str) -> Path:
    return ws.env_dir({"PIP_INDEX_URL": idx.url, "PIP_TRUSTED_HOST": "127.0.0.1", **more})


# --- the app's own environment -----------------------------------------------------------------


def test_gunicorn_in_requirements_is_the_venvs_and_sees_the_apps_packages(
        ws: Workspace, full_index: Index) -> None:
    """The issue's app: gunicorn in requirements.txt, ``web: gunicorn app:app``. With the
    stack's site-packages visible, pip found gunicorn "already satisfied", the Procfile ran
    /usr/bin/gunicorn with /usr/bin/python3 and every worker died importing the app's
    dependency."""
    app = ws.app("python-gunicorn")
    output, types = build_app(ws, "python", app, ws.mkdir("cache"), _index_env(ws, full_index))

    assert any(r.startswith("/packages/gunicorn-") for r in full_index.requests)
    assert "from the stack" not in output  # the app's own gunicorn, not the stack's
    script = app / ".venv" / "bin" / "gunicorn"
    assert script.read_text().splitlines()[0] == f"#!{app}/.venv/bin/python"
    web = ws.start(app, types["web"])
    resp = get(web, "/")
    assert (resp.status, resp.text) == (200, "hello from tinygreet 1.0\n"), web.output()


def test_the_venv_does_not_see_the_stacks_site_packages(ws: Workspace) -> None:
    app = ws.app("python-wsgi")
    build_app(ws, "python", app, ws.mkdir("cache"))
    # Debian's yaml (python3-yaml, on this host for the tests' tools) is not the app's
    system = subprocess.run(["/usr/bin/python3", "-c", "import yaml"], check=False)
    venv = ws.run(app / ".venv" / "bin" / "python", "-c", "import yaml")
    if system.returncode == 0:
        assert venv.returncode != 0 and "No module named 'yaml'" in venv.stderr
    listed = ws.run(app / ".venv" / "bin" / "python", "-m", "pip", "list", "--format", "freeze")
    assert listed.returncode == 0, listed.stderr  # pip is in the venv, from the stack's wheel
    names = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert names == {"gunicorn", "pip", "setuptools"}


def test_a_procfile_naming_gunicorn_gets_the_stacks_when_the_app_lists_none(
        ws: Workspace) -> None:
    app = ws.app("python-wsgi")
    (app / "Procfile").write_text("web: gunicorn wsgi:application --bind 0.0.0.0:$PORT\n")
    output, types = build_app(ws, "python", app, ws.mkdir("cache"),
                              ws.env_dir({"PIP_NO_INDEX": "1"}))
    assert "Installing gunicorn 20.1.0 from the stack" in output
    assert (app / ".venv" / "bin" / "gunicorn").is_file()
    web = ws.start(app, types["web"])
    assert get(web, "/").text == "hello from a stdlib wsgi app\n"


def test_an_app_running_no_gunicorn_gets_none(ws: Workspace) -> None:
    app = ws.app("python-wsgi")
    (app / "Procfile").write_text("web: python -m http.server $PORT\n")
    output, _ = build_app(ws, "python", app, ws.mkdir("cache"))
    assert "gunicorn" not in output
    assert not (app / ".venv" / "bin" / "gunicorn").exists()


# --- config vars -------------------------------------------------------------------------------


def test_every_config_var_reaches_pip_pip_no_index_included(
        ws: Workspace, index: Index) -> None:
    """Only four PIP_* vars used to pass: PIP_NO_INDEX=1 was ignored and pip went to the
    index anyway (60 s of retries when it was unreachable)."""
    app = ws.app("python-requirements")
    result = ws.compile("python", app, ws.mkdir("cache"),
                        ws.env_dir({"PIP_INDEX_URL": index.url, "PIP_NO_INDEX": "1"}))
    assert result.returncode == 1
    assert index.requests == []
    assert "Ignoring indexes" in result.stdout or "No matching distribution" in result.stdout
    assert len(_errors(result.stderr)) == 1 and "pip wheel failed" in result.stderr


ENV_VALUES = {
    "GREETING": "two words",
    "MULTILINE": "line one\nline two",
    "TRICKY": "it's \"quoted\" $HOME `id` $(id) \\n *",
    "PATH": "/nonexistent",
    "LD_PRELOAD": "/nonexistent.so",
    "PYTHONPATH": "/nonexistent",
    "BASH_ENV": "/nonexistent",
    "UID": "0",
    "SHELLOPTS": "xtrace",
    "GIT_DIR": "/nonexistent",
}


def test_export_env_dir_exports_all_but_the_denylist(ws: Workspace) -> None:
    env_dir = ws.env_dir(ENV_VALUES)
    bad = env_dir / "not-a-name"
    bad.write_text("x")
    _chown_tree(env_dir)
    common = ws.root / "buildpacks" / "lib" / "common.sh"
    script = 'set -euo pipefail; source "$1"; export_env_dir "$2"; env -0 > "$3"'
    out = ws.root / "env.out"
    out.touch()
    _chown_tree(out)
    result = ws.run("/bin/bash", "-c", script, "bash", common, env_dir, out)
    assert result.returncode == 0, result.stderr
    env = dict(item.split("=", 1) for item in out.read_text().split("\0") if item)
    for key in ("GREETING", "MULTILINE", "TRICKY"):
        assert env[key] == ENV_VALUES[key]
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    for key in ("LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "GIT_DIR", "not-a-name"):
        assert key not in env
    assert env.get("SHELLOPTS", "") != "xtrace"
    held = re.search(r"not exported to the build \(the build sets them\): (.*)", result.stdout)
    assert held and set(held[1].split()) == {
        "BASH_ENV", "GIT_DIR", "LD_PRELOAD", "PATH", "PYTHONPATH", "SHELLOPTS", "UID",
        "not-a-name"}


# --- the Python version --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "origin"), [
    (".python-version", "# the app's Python\n{minor}\n", ".python-version asks for {minor}"),
    ("runtime.txt", "python-{full}\n", "runtime.txt asks for {full}"),
])
def test_a_python_version_the_stack_has_is_used(ws: Workspace, name: str, text: str,
                                                origin: str) -> None:
    minor = HOST_PYTHON.rsplit(".", 1)[0]
    app = ws.app("python-wsgi")
    (app / name).write_text(text.format(minor=minor, full=HOST_PYTHON))
    output, _ = build_app(ws, "python", app, ws.mkdir("cache"))
    assert f"Python {HOST_PYTHON}: {origin.format(minor=minor, full=HOST_PYTHON)}" in output


@pytest.mark.parametrize(("name", "text", "message"), [
    (".python-version", "3.12\n", (".python-version asks for Python 3.12, which this stack "
                                  "does not have: it has Python {full} (write {minor} in "
                                  ".python-version, or remove it)")),
    ("runtime.txt", "python-3.11.99\n", "runtime.txt asks for Python 3.11.99, which this stack"),
    ("runtime.txt", "3.11\n", ("runtime.txt: '3.11' is not a Python version: write e.g. "
                              "python-3.11")),
    (".python-version", "latest\n", ".python-version: 'latest' is not a Python version"),
])
def test_a_python_version_the_stack_lacks_fails_in_one_line(ws: Workspace, name: str,
                                                            text: str, message: str) -> None:
    app = ws.app("python-wsgi")
    (app / name).write_text(text)
    result = ws.compile("python", app, ws.mkdir("cache"))
    assert result.returncode == 1
    errors = _errors(result.stderr)
    minor = HOST_PYTHON.rsplit(".", 1)[0]
    assert len(errors) == 1 and message.format(full=HOST_PYTHON, minor=minor) in errors[0]
    assert not (app / ".venv").exists()


# --- package managers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("files", "message"), [
    (("requirements.txt", "poetry.lock"), ("the app has requirements.txt poetry.lock: keep the "
                                          "files of one package manager")),
    (("uv.lock", "poetry.lock"), "the app has poetry.lock uv.lock"),
])
def test_more_than_one_package_manager_fails_in_one_line(ws: Workspace, files: tuple[str, ...],
                                                         message: str) -> None:
    app = ws.app("python-wsgi")
    (app / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    (app / "requirements.txt").unlink()
    for name in files:
        (app / name).touch()
    result = ws.compile("python", app, ws.mkdir("cache"))
    assert result.returncode == 1
    errors = _errors(result.stderr)
    assert len(errors) == 1 and message in errors[0]


def test_a_lock_file_without_pyproject_fails_in_one_line(ws: Workspace) -> None:
    app = ws.mkdir("lock-only")
    (app / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (app / "uv.lock").write_text("version = 1\n")
    _chown_tree(app)
    result = ws.compile("python", app, ws.mkdir("cache"))
    assert result.returncode == 1
    assert _errors(result.stderr) == [
        " !     uv.lock needs its pyproject.toml, which the app lacks: commit both"]


def test_a_pep517_project_is_installed_then_rebuilt_offline(
        ws: Workspace, full_index: Index) -> None:
    cache = ws.mkdir("cache")
    env_dir = _index_env(ws, full_index)
    app = ws.app("python-project")
    output, types = build_app(ws, "python", app, cache, env_dir)
    assert "-----> Installing the project with pip (pip install .)" in output
    assert any("setuptools" in r for r in full_index.requests)
    site = next((app / ".venv" / "lib").glob("python3.*/site-packages"))
    assert (site / "greeter" / "__init__.py").is_file()  # installed, not only in the source
    web = ws.start(app, types["web"])
    assert get(web, "/").text == "hello from tinygreet 1.0 via greeter\n"
    ws.stop(web)

    full_index.stop()
    served = len(full_index.requests)
    rebuilt = ws.app("python-project")
    (rebuilt / "greeter" / "__init__.py").write_text(
        'import tinygreet\n\nGREETING = f"{tinygreet.GREETING} via greeter v2"\n')
    _chown_tree(rebuilt)
    output, types = build_app(ws, "python", rebuilt, cache, env_dir)
    assert "dependencies from the wheel cache: pyproject.toml unchanged" in output
    assert len(full_index.requests) == served
    web = ws.start(rebuilt, types["web"])
    assert get(web, "/").text == "hello from tinygreet 1.0 via greeter v2\n"  # new source


def _e2e_app(ws: Workspace, name: str, dest: str) -> Path:
    """The e2e sample app ``name`` at ``ws.root/dest`` (the same path on every build: a
    kept venv names its path, and in paas it is always /app)."""
    path = ws.root / dest
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(E2E_APPS / name, path)
    _chown_tree(path)
    return path


@pytest.mark.parametrize(("name", "manager", "lock"), [
    ("flask-uv", "uv (uv.lock)", "uv.lock"),
    ("flask-poetry", "Poetry (poetry.lock)", "poetry.lock"),
])
def test_a_locked_app_from_pypi_then_rebuilds_that_download_nothing(
        ws: Workspace, name: str, manager: str, lock: str) -> None:
    cache = ws.mkdir("cache")
    app = _e2e_app(ws, name, "app")
    output, types = build_app(ws, "python", app, cache)
    assert f"package manager: {manager}" in output
    web = ws.start(app, types["web"])
    body = get(web, "/").text
    assert body.startswith(f"{name} v1 flask 3.") and f"prefix {app}/.venv" in body, body
    ws.stop(web)

    # unchanged lock, a code change: the kept venv, no package manager at all
    app = _e2e_app(ws, name, "app")
    (app / "VERSION").write_text("v2\n")
    output, types = build_app(ws, "python", app, cache, ws.env_dir(DEAD_PROXY))
    assert f"-----> Restoring .venv from the cache ({lock} unchanged): nothing to install" \
        in output
    web = ws.start(app, types["web"])
    assert get(web, "/").text.startswith(f"{name} v2 flask 3.")
    ws.stop(web)
    if name != "flask-uv":
        return
    # a venv elsewhere (no kept venv for that path): uv syncs offline from its cache
    other = _e2e_app(ws, name, "elsewhere")
    output, types = build_app(ws, "python", other, cache, ws.env_dir(DEAD_PROXY))
    assert "-----> Using uv 0.13.9 (cached)" in output
    assert "uv.lock unchanged: uv sync --locked --offline" in output
    web = ws.start(other, types["web"])
    assert get(web, "/").text.startswith(f"{name} v1 flask 3.")


def test_a_kept_venv_is_restored_for_unchanged_requirements(
        ws: Workspace, full_index: Index) -> None:
    cache = ws.mkdir("cache")
    env_dir = _index_env(ws, full_index)
    app = ws.root / "app"  # the same path on every build, as /app in paas
    shutil.copytree(APPS_DIR / "python-gunicorn", app)
    _chown_tree(app)
    build_app(ws, "python", app, cache, env_dir)
    full_index.stop()
    served = len(full_index.requests)
    shutil.rmtree(app)
    shutil.copytree(APPS_DIR / "python-gunicorn", app)
    _chown_tree(app)
    output, types = build_app(ws, "python", app, cache, env_dir)
    assert "-----> Restoring .venv from the cache (requirements unchanged): nothing to install" \
        in output
    assert len(full_index.requests) == served
    web = ws.start(app, types["web"])
    assert get(web, "/").text == "hello from tinygreet 1.0\n"

    # other requirements: installed anew (from local wheels here), never the kept venv
    (app / "requirements.txt").write_text("tinygreet==1.0\n")
    (app / "Procfile").unlink()
    ws.stop(web)
    output, _ = build_app(ws, "python", app, cache, ws.env_dir(
        {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(ws.root / "full-index" / "packages")}))
    assert "Restoring" not in output and "-----> Installing requirements with pip\n" in output
    # the default web process now: gunicorn is the stack's, no longer the app's
    assert "Installing gunicorn 20.1.0 from the stack" in output
