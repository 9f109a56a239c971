"""Properties of config vars end to end: any value ``validate_config_value`` accepts
(spaces, quotes, '=', newlines, unicode) reaches a container's environment exactly.

The path of a value: ``AppStore`` (SQLite) -> ``ReleaseStore`` (JSON in SQLite) ->
``process_env`` -> paasd's request body (JSON) -> ``options_from_flags`` ->
``resolve_config`` -> the state DB (``config_to_json``) -> the OCI spec's ``env``;
and for buildpack builds, the ENV_DIR files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paas.apps.store import AppStore
from paas.apps.validate import parse_assignments, validate_config_key, validate_config_value
from paas.build.buildpacks import _env_dir
from paas.deploy.processes import run_flags
from paas.deploy.releases import ReleaseStore
from paas.errors import InvalidArgument
from paas.model import Image, ImageConfig
from paas.runtime.containers import config_from_json, config_to_json
from paas.runtime.options import options_from_flags
from paas.runtime.resolve import resolve_config
from paas.runtime.spec import _env
from paas.state import connect

from .strategies import PROPERTY, nasty_text, nasty_value

_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
    lambda k: k not in ("PORT", "DYNO", "PAAS_APP", "PAAS_RELEASE"))  # set by paas itself
_CONFIG = st.dictionaries(_KEY, nasty_value(60), min_size=1, max_size=6)
IMAGE = Image(id="sha256:" + "1" * 64, manifest_digest="sha256:" + "2" * 64, created="",
              size=0, config=ImageConfig(cmd=("sh",), env=("PATH=/usr/bin:/bin", "LANG=C")),
              diff_ids=(), chain_ids=())


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    with tempfile.TemporaryDirectory(prefix="paas-prop-") as d:
        c = connect(os.path.join(d, "state.db"))
        yield c
        c.close()


_apps = iter(range(1_000_000))


@PROPERTY
@given(config=_CONFIG)
def test_config_reaches_the_container_env_exactly(conn: sqlite3.Connection,
                                                  config: dict[str, str]) -> None:
    app = f"app{next(_apps)}"
    apps = AppStore(conn)
    apps.create(app)
    stored = apps.set_config(app, config)
    assert stored == config
    release = ReleaseStore(conn).add(app, image_id=IMAGE.id, processes={"web": "serve"},
                                     config=stored, formation={"web": 1}, git_sha="",
                                     description="prop")
    assert dict(release.config) == config

    flags = run_flags(release, "web", 1, 5000)
    body = json.loads(json.dumps(flags).encode())  # paasd's client -> server
    cfg = resolve_config(options_from_flags(body), IMAGE, "paas-apps/x:v1")
    cfg = config_from_json(config_to_json(cfg))  # kept in the state DB
    env = dict(item.partition("=")[::2] for item in _env(cfg, "host"))
    for key, value in config.items():
        assert env[key] == value
    assert env["PORT"] == "5000" and env["DYNO"] == "web.1"
    apps.remove(app)


@PROPERTY
@given(config=_CONFIG)
def test_config_reaches_the_buildpack_env_dir_exactly(config: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="paas-prop-") as work:
        env_dir = _env_dir(work, tuple(config.items()), os.getuid())
        found = {p.name: p.read_bytes().decode("utf-8") for p in Path(env_dir).iterdir()}
    assert found == config


@PROPERTY
@given(_KEY, nasty_value(60))
def test_assignment_splits_at_the_first_equals(key: str, value: str) -> None:
    assert parse_assignments([f"{key}={value}"]) == [(key, value)]


@PROPERTY
@given(nasty_text(80))
def test_validators_accept_or_refuse_any_text(text: str) -> None:
    for validate in (validate_config_key, validate_config_value):
        try:
            assert validate(text) == text
        except InvalidArgument as err:
            assert err.message and err.hint
    try:
        parse_assignments([text])
    except InvalidArgument as err:
        assert err.message and err.hint
