"""Python apps as users push them (issue 13): Flask from the real PyPI with pip, Poetry and
uv, pushed with git and answering through nginx.

The pip app is the issue's own: ``requirements.txt`` with ``flask`` and ``gunicorn`` and
``web: gunicorn app:app --bind 0.0.0.0:$PORT``. It deployed ("Application deployed")
and answered every request with a 503, because the venv saw the stack's site-packages:
``gunicorn`` was the stack's ``/usr/bin/gunicorn`` and its workers could not import
Flask. Its code-change rebuild runs with ``HTTPS_PROXY``/``HTTP_PROXY`` config vars
pointing at a closed port, so anything it tried to download would fail the push.

Each test has its own app on the module's instance; downloads are a few MB (Flask,
gunicorn, uv, Poetry), once per app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from e2e_helpers import AppRepo, Platform, repo_ref
from test_deploy import deploy, reject, wait_body

DEAD_PROXY = ("HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9")
TIMINGS: dict[str, float] = {}


def _errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("remote:  !     ")]


def test_flask_with_gunicorn_in_requirements_answers_then_rebuilds_offline(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo("flask-pip")
    started = time.monotonic()
    out = deploy(platform, repo, "flaskpip")
    TIMINGS["flask-pip first"] = time.monotonic() - started
    assert "-----> Installing requirements with pip" in out
    assert "from the stack" not in out  # the app's own gunicorn
    body = wait_body(platform, "flaskpip", "flask-pip v1 flask 3.")
    assert body.rstrip().endswith("prefix /app/.venv"), body

    # nothing may be downloaded now: any request to the index would fail the build
    platform.cli("config:set", "--no-restart", "flaskpip", *DEAD_PROXY)
    repo.commit("v2", VERSION="v2\n")
    started = time.monotonic()
    out = deploy(platform, repo, "flaskpip")
    TIMINGS["flask-pip code change"] = time.monotonic() - started
    assert "Restoring .venv from the cache (requirements unchanged): nothing to install" in out
    wait_body(platform, "flaskpip", "flask-pip v2 flask 3.")
    print(f"\nflask-pip: first deploy {TIMINGS['flask-pip first']:.1f}s, "
          f"code change {TIMINGS['flask-pip code change']:.1f}s")


def test_pip_no_index_set_with_config_set_reaches_pip(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    """Only four PIP_* config vars used to reach the build: this push deployed with
    Flask from the index in spite of PIP_NO_INDEX=1."""
    platform.cli("apps:create", "noindex")
    platform.cli("config:set", "--no-restart", "noindex", "PIP_NO_INDEX=1")
    repo = app_repo("flask-pip")
    started = time.monotonic()
    out = reject(platform, repo, "noindex")
    assert time.monotonic() - started < 60
    assert "Ignoring indexes" in out or "No matching distribution found for flask" in out, out
    assert any("pip wheel failed" in line for line in _errors(out)), out
    assert repo_ref(platform.root, "noindex", "refs/heads/main") is None


def test_poetry_app_answers_with_the_stacks_gunicorn(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo("flask-poetry")
    out = deploy(platform, repo, "flaskpoetry")
    assert "package manager: Poetry (poetry.lock)" in out
    assert "Installing gunicorn 20.1.0 from the stack (the app does not list gunicorn)" in out
    body = wait_body(platform, "flaskpoetry", "flask-poetry v1 flask 3.")
    assert body.rstrip().endswith("prefix /app/.venv"), body


def test_uv_app_answers(platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo("flask-uv")
    out = deploy(platform, repo, "flaskuv")
    assert "package manager: uv (uv.lock)" in out
    assert "Installing uv " in out
    body = wait_body(platform, "flaskuv", "flask-uv v1 flask 3.")
    assert body.rstrip().endswith("prefix /app/.venv"), body


def test_a_python_version_the_stack_lacks_rejects_the_push_in_one_line(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    repo = app_repo()  # the stdlib WSGI app, made a Python app: nothing to download
    repo.commit("python", **{"requirements.txt": "# the standard library only\n"})
    good = repo.head()
    out = deploy(platform, repo, "pyver")
    assert "Installing gunicorn 20.1.0 from the stack" in out  # its Procfile runs gunicorn
    wait_body(platform, "pyver", "v1")

    repo.commit("python 3.12", VERSION="v2\n", **{".python-version": "3.12\n"})
    out = reject(platform, repo, "pyver")
    errors = _errors(out)
    assert len(errors) == 1, out
    assert ".python-version asks for Python 3.12, which this stack does not have: " \
           "it has Python 3.11." in errors[0]
    assert "(write 3.11 in .python-version, or remove it)" in errors[0]
    assert repo_ref(platform.root, "pyver", "refs/heads/main") == good
    assert wait_body(platform, "pyver", "v1").startswith("v1")
