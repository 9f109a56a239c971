"""Push tokens (hashing, store) and push URLs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paas.errors import AlreadyExists, InvalidArgument, NotFound
from paas.receive.tokens import TokenStore, hash_token, verify_token
from paas.receive.urls import git_endpoints, http_url, ssh_url


def test_hash_and_verify() -> None:
    stored = hash_token("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_token("s3cret", stored)
    assert not verify_token("s3cret ", stored)
    assert not verify_token("", stored)
    assert hash_token("s3cret") != stored  # salted
    assert not verify_token("s3cret", "garbage")
    assert not verify_token("s3cret", "pbkdf2$1$2$3$4$5")


def test_token_store(tmp_path: Path) -> None:
    store = TokenStore.for_root(str(tmp_path))
    token = store.add("ci")
    assert token.startswith("paas_") and len(token) > 40
    assert store.check("ci", token)
    assert not store.check("ci", token + "x")
    assert not store.check("other", token)
    with pytest.raises(AlreadyExists):
        store.add("ci")
    with pytest.raises(InvalidArgument):
        store.add("bad name")
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert token not in Path(store.path).read_text()
    assert list(json.loads(Path(store.path).read_text())) == ["ci"]
    assert [t.name for t in store.list()] == ["ci"]
    store.remove("ci")
    assert not store.check("ci", token)
    with pytest.raises(NotFound):
        store.remove("ci")


def test_ssh_urls() -> None:
    assert ssh_url("web", "paas.example.com") == "paas@paas.example.com:web"
    assert ssh_url("web", "h", 2222, "git") == "ssh://git@h:2222/web"
    assert ssh_url("web", "::1", 22) == "ssh://paas@[::1]:22/web"
    with pytest.raises(InvalidArgument):
        ssh_url("../x", "h")


def test_http_urls() -> None:
    assert http_url("web", "h", 8022) == "http://h:8022/web.git"
    assert http_url("web", "h", 80) == "http://h/web.git"
    assert http_url("web", "h", 8022, name="ci", token="a/b:c") == \
        "http://ci:a%2Fb%3Ac@h:8022/web.git"
    assert http_url("web", "h", 443, scheme="https") == "https://h/web.git"


def test_endpoints_from_env() -> None:
    ep = git_endpoints({"PAAS_SSH_HOST": "h", "PAAS_SSH_PORT": "2222", "PAAS_HTTP_GIT_PORT": "9"})
    assert (ep.ssh_host, ep.ssh_port, ep.ssh_user, ep.http_host, ep.http_port) == (
        "h", 2222, "paas", "h", 9)
    with pytest.raises(InvalidArgument):
        git_endpoints({"PAAS_SSH_HOST": "h", "PAAS_SSH_PORT": "x"})
