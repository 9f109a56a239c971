"""The pure renderers of paas.cli.ops: container status (restarting/backing off, OOM),
byte counts in flag syntax, the LIMITS column."""

from __future__ import annotations

from paas.cli.ops import format_bytes, limits_text, status_text
from paas.model import Container, ContainerConfig, ContainerState

CFG = ContainerConfig(image="web:v1", image_id="sha256:" + "a" * 64, args=("sh",))


def _c(state: str, **kw: object) -> Container:
    return Container(id="f" * 64, name="web.web.1.v1", config=CFG, state=state, created=0.0,
                     **kw)  # type: ignore[arg-type]


def test_status_of_a_container_backing_off() -> None:
    c = _c(ContainerState.RESTARTING, exit_code=137, oom_killed=True, restart_count=3)
    assert status_text(c) == "restarting (exited 137, OOM killed, 3 restarts)"
    assert status_text(_c(ContainerState.RESTARTING, exit_code=1)) == \
        "restarting (exited 1, 0 restarts)"
    assert status_text(_c(ContainerState.RESTARTING, exit_code=1, restart_count=1)) == \
        "restarting (exited 1, 1 restart)"


def test_status_of_running_and_exited_containers() -> None:
    assert status_text(_c(ContainerState.RUNNING, restart_count=2)) == "running"
    assert status_text(_c(ContainerState.EXITED, exit_code=0)) == "exited (0)"
    assert status_text(_c(ContainerState.EXITED, exit_code=137, oom_killed=True,
                          restart_count=10)) == "exited (137, OOM killed, 10 restarts)"


def test_format_bytes_and_limits_text() -> None:
    assert [format_bytes(n) for n in (512 << 20, 1 << 30, 1536 << 10, 1000)] == [
        "512m", "1g", "1536k", "1000"]
    assert limits_text(64 << 20, 0.5, 100) == "mem=64m cpus=0.5 pids=100"
    assert limits_text(None, 2.0, None) == "cpus=2"
    assert limits_text(None, None, None) == "-"
