"""``Restarts``: an exit its policy restarts is recorded ``restarting`` at once (never
``exited`` in between, which ``ps`` could show), and a failed restart start too; an exit
it does not restart, or one the user stopped meanwhile, ends ``exited``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from paas.daemon.restarts import Restarts
from paas.errors import CommandFailed
from paas.model import Container, ContainerConfig, ContainerState


def _container(restart: str, **kw: Any) -> Container:
    cfg = ContainerConfig(image="debian:bookworm", image_id="sha256:" + "0" * 64,
                          args=("true",), restart=restart)
    return Container(id="c" * 64, name="c", config=cfg, state=ContainerState.RUNNING,
                     created=0.0, **kw)


class Store:
    """The container store's calls ``Restarts`` makes, recording every state written."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self.states: list[str] = []

    def get(self, cid: str) -> Container:
        return self.c

    def set_exited(self, cid: str, code: int, *, error: str = "", oom_killed: bool = False,
                   restarting: bool = False) -> None:
        state = ContainerState.RESTARTING if restarting else ContainerState.EXITED
        self.c = replace(self.c, state=state, exit_code=code)
        self.states.append(state)

    def set_restarting(self, cid: str, restarting: bool = True) -> None:
        state = ContainerState.RESTARTING if restarting else ContainerState.EXITED
        self.c = replace(self.c, state=state)
        self.states.append(state)

    def count_restart(self, cid: str) -> None:
        self.c = replace(self.c, restart_count=self.c.restart_count + 1)


class Runtime:
    def __init__(self, store: Store) -> None:
        self.store = store


class Scheduler:
    def __init__(self) -> None:
        self.calls: list[Callable[[], None]] = []

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.calls.append(fn)


def _restarts(store: Store, start: Callable[[Any, str], None]) -> tuple[Restarts, Scheduler]:
    sched = Scheduler()
    rt = Runtime(store)
    return Restarts(lambda: rt, start, sched), sched  # type: ignore[arg-type]


def test_an_exit_the_policy_restarts_is_restarting_from_the_start() -> None:
    c = _container("on-failure:2")
    assert Restarts.wants_restart(c, 1)
    assert not Restarts.wants_restart(c, 0)
    assert not Restarts.wants_restart(replace(c, restart_count=2), 1)
    assert not Restarts.wants_restart(replace(c, stopped_by_user=True), 1)
    assert not Restarts.wants_restart(_container("no"), 1)
    assert not Restarts.wants_restart(_container("bogus:x"), 1)


def test_a_failed_restart_start_is_recorded_restarting_while_retries_remain() -> None:
    store = Store(_container("on-failure:2"))

    def start(rt: Any, cid: str) -> None:
        raise CommandFailed("runc create failed")

    restarts, sched = _restarts(store, start)
    store.set_exited(store.c.id, 1, restarting=Restarts.wants_restart(store.c, 1))
    restarts.after_exit(Runtime(store), store.c.id, 1, 0.0)  # type: ignore[arg-type]
    while sched.calls:
        sched.calls.pop(0)()
    # restart 1 and 2 fail to start: each is restarting again until the policy is spent
    assert store.states == [ContainerState.RESTARTING] * 4 + [ContainerState.EXITED], store.states
    assert store.c.restart_count == 2 and store.c.state == ContainerState.EXITED


def test_a_user_stop_while_restarting_ends_exited() -> None:
    store = Store(_container("always"))
    restarts, sched = _restarts(store, lambda rt, cid: None)
    store.set_exited(store.c.id, 1, restarting=True)
    store.c = replace(store.c, stopped_by_user=True)
    assert restarts.after_exit(Runtime(store), store.c.id, 1, 0.0) is None  # type: ignore[arg-type]
    assert store.c.state == ContainerState.EXITED and not sched.calls
