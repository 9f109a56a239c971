"""The smart HTTP app's gate, called in-process: auth, refused services, bad paths.
(Pushes through it with the real git client are in tests/integration/receive.)"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from paas.config import load_context
from paas.model import Push
from paas.receive.http import GitHttpApp, basic_credentials
from paas.receive.tokens import TokenStore


def _hook(push: Push, progress: Any) -> None:
    raise AssertionError("no push expected")


@pytest.fixture
def client(tmp_path: Path) -> tuple[GitHttpApp, str]:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    store = TokenStore.for_root(str(tmp_path))
    token = store.add("ci")
    return GitHttpApp(ctx, _hook, store), token


def call(app: GitHttpApp, path: str, query: str = "", method: str = "GET",
         auth: tuple[str, str] | None = None, **extra: str) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query,
                               "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(b""), **extra}
    if auth:
        environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode()
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return got["status"], got["headers"], body


def test_basic_credentials() -> None:
    assert basic_credentials("Basic " + base64.b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None


@pytest.mark.parametrize("auth", [None, ("ci", "wrong"), ("nobody", "x"), ("ci", "")])
def test_unauthenticated_is_401(client: tuple[GitHttpApp, str],
                                auth: tuple[str, str] | None) -> None:
    app, _ = client
    status, headers, _ = call(app, "/web.git/info/refs", "service=git-receive-pack", auth=auth)
    assert status.startswith("401")
    assert headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("path, query, method, want", [
    ("/web.git/info/refs", "service=git-upload-pack", "GET", "403"),
    ("/web.git/info/refs", "", "GET", "403"),  # dumb HTTP
    ("/web.git/git-upload-pack", "", "POST", "403"),
    ("/web.git/HEAD", "", "GET", "404"),
    ("/web.git/objects/info/packs", "", "GET", "404"),
    ("/../etc.git/info/refs", "service=git-receive-pack", "GET", "404"),
    ("/Web.git/info/refs", "service=git-receive-pack", "GET", "404"),
    ("/web.git/git-receive-pack", "", "GET", "405"),
    ("/web.git/git-receive-pack", "", "POST", "415"),  # no content type
])
def test_refused_requests(client: tuple[GitHttpApp, str], path: str, query: str, method: str,
                          want: str) -> None:
    app, token = client
    status, _, _ = call(app, path, query, method, auth=("ci", token))
    assert status.startswith(want), status


def test_advertisement_creates_the_repo(client: tuple[GitHttpApp, str], tmp_path: Path) -> None:
    app, token = client
    status, headers, body = call(app, "/web.git/info/refs", "service=git-receive-pack",
                                 auth=("ci", token))
    assert status.startswith("200")
    assert headers["Content-Type"] == "application/x-git-receive-pack-advertisement"
    assert body.startswith(b"001f# service=git-receive-pack\n0000")
    assert b"report-status" in body and b"side-band-64k" in body
    assert (tmp_path / "repos" / "web.git" / "HEAD").read_text() == "ref: refs/heads/main\n"
