"""Apps' own id ranges end to end (issue 12, item 3), pushed with the real git client.

- a pushed app's build containers (a Dockerfile RUN step, a buildpack compile and its
  cache dir) run in the app's own range, as do its process containers;
- the upgrade: an app made before id ranges per app (migration 10 lists it in
  ``app_idmap_shared``) with storage owned by the shared range and a container
  running in it keeps working, and moves to its own range at its next deploy with its
  storage re-owned; a deploy that fails before its switch moves it back.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from e2e_helpers import AppRepo, Platform
from test_deploy import deploy, wait_body

from paas.daemon.client import DaemonClient
from paas.paths import Paths
from paas.runtime.options import flags_from_argv

SHARED = 100000  # PAAS_SUBUID's default start: the range every app used before

DOCKERFILE = """\
FROM paas/stack:bookworm
WORKDIR /app
COPY . /app
RUN cat /proc/self/uid_map
CMD ["python3", "-m", "gunicorn", "--bind", "0.0.0.0:5000", "app:application"]
"""


def id_range(platform: Platform, app: str) -> dict[str, object]:
    info = json.loads(platform.cli("apps:info", app, "--format", "json").stdout)
    rng: dict[str, object] = info["id_range"]
    return rng


def uid_map_of(platform: Platform, name: str) -> int:
    cid = json.loads(platform.cli("container:inspect", name).stdout)[0]["Id"]
    spec = json.loads((platform.root / "containers" / cid / "config.json").read_text())
    return int(spec["linux"]["uidMappings"][0]["hostID"])


def test_build_and_process_containers_use_the_apps_range(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    docker = app_repo()
    docker.commit("a Dockerfile app", Dockerfile=DOCKERFILE)
    out = deploy(platform, docker, "idd")
    host = int(id_range(platform, "idd")["host_id"])  # type: ignore[call-overload]
    assert host >= 1000000 and host != SHARED
    # the RUN step's user namespace: root is the app's own first id
    assert f"0 {host} 65536" in " ".join(out.split()), out
    assert uid_map_of(platform, "idd.web.1.v1") == host

    bp = app_repo()
    deploy(platform, bp, "idbp")
    host_bp = int(id_range(platform, "idbp")["host_id"])  # type: ignore[call-overload]
    assert abs(host_bp - host) >= 65536
    # the compile ran as the app user of its range: the cache it wrote is theirs
    cache = platform.root / "buildcache" / "idbp"
    assert cache.stat().st_uid == host_bp + 1000
    assert uid_map_of(platform, "idbp.web.1.v1") == host_bp


def _make_shared(platform: Platform, app: str) -> Path:
    """An app as migration 10 finds one made before it: in the shared range, with storage
    owned by the shared range's app user and a note its old release wrote."""
    platform.cli("apps:create", app)
    with sqlite3.connect(platform.root / "state.db") as conn:
        conn.execute("INSERT INTO app_idmap_shared (app) VALUES (?)", (app,))
    platform.cli("storage:ensure-directory", app)
    data = platform.root / "data" / "storage" / app
    assert data.stat().st_uid == SHARED + 1000  # as before per-app ranges
    (data / "note").write_text("old")
    os.chown(data / "note", SHARED + 1000, SHARED + 1000)
    platform.cli("storage:mount", app, f"{data}:/data")
    return data


def _old_container(platform: Platform, app: str) -> str:
    """A process container of the app's 'previous release' (v0), in the shared range."""
    name = f"{app}.web.1.v0"
    flags = flags_from_argv(["-d", "--name", name, "-v",
                             f"{platform.root}/data/storage/{app}:/data", "debian:bookworm",
                             "sleep", "600"])
    DaemonClient(Paths(str(platform.root))).request(
        "POST", "/containers", {"flags": flags, "start": True, "app": app})
    return name


def test_an_app_from_before_moves_to_its_own_range_at_its_next_deploy(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    data = _make_shared(platform, "legacy")
    old = _old_container(platform, "legacy")
    assert uid_map_of(platform, old) == SHARED  # still the shared range until the deploy
    assert id_range(platform, "legacy")["shared"] is True
    out = deploy(platform, app_repo("ops"), "legacy")
    assert "Moving legacy to its own id range" in out, out
    rng = id_range(platform, "legacy")
    host = int(rng["host_id"])  # type: ignore[call-overload]
    assert rng["shared"] is False and host != SHARED
    assert uid_map_of(platform, "legacy.web.1.v1") == host
    # its data moved with it: readable and writable by the new containers' app user
    assert wait_body(platform, "legacy", "v1")
    assert platform.get("legacy", "/read/note").body.strip() == "old"
    assert platform.get("legacy", "/write/new/x").body.strip() == "written"
    assert (data / "note").stat().st_uid == host + 1000
    assert (data / "new").stat().st_uid == host + 1000
    assert (data / "releases").read_text().split() == ["v1"]  # the release phase too
    assert old not in platform.container_names()  # the cutover stopped the old one


def test_a_failed_deploy_leaves_the_app_in_the_shared_range(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    data = _make_shared(platform, "stays")
    repo = app_repo("ops")
    repo.commit("a failing release phase", Procfile=(
        "web: exec python3 -m gunicorn --bind 0.0.0.0:$PORT app:application\n"
        "release: exit 3\n"))
    res = repo.push(platform.http_url("stays"))
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "release command failed" in out, out
    assert "Moving stays to its own id range" in out
    assert id_range(platform, "stays") == {"host_id": SHARED, "size": 65536, "shared": True}
    assert (data / "note").stat().st_uid == SHARED + 1000  # re-owned back
