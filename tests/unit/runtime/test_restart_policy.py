"""Restart policies: parsing ``--restart``, Docker's decision and backoff, the CLI's status text,
and paasd's one-thread timer scheduler."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from paas.cli.container import status_text
from paas.daemon.restarts import Scheduler
from paas.errors import InvalidArgument
from paas.model import Container, ContainerConfig
from paas.runtime.options import parse_run_options
from paas.runtime.restart import (
    BACKOFF_MAX,
    RestartPolicy,
    next_backoff,
    parse_restart_policy,
    should_restart,
)


@pytest.mark.parametrize(("text", "policy"), [
    ("no", RestartPolicy("no")),
    ("always", RestartPolicy("always")),
    ("unless-stopped", RestartPolicy("unless-stopped")),
    ("on-failure", RestartPolicy("on-failure", 0)),
    ("on-failure:0", RestartPolicy("on-failure", 0)),
    ("on-failure:5", RestartPolicy("on-failure", 5)),
])
def test_valid_policies(text: str, policy: RestartPolicy) -> None:
    assert parse_restart_policy(text) == policy


@pytest.mark.parametrize("text", ["", "never", "on-failure:", "on-failure:-1", "on-failure:x",
                                  "always:3", "no:1", "ALWAYS", "on-failure:1:2"])
def test_invalid_policies_name_the_choices(text: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        parse_restart_policy(text)
    assert ei.value.hint


def test_str_round_trips() -> None:
    for text in ("no", "always", "unless-stopped", "on-failure", "on-failure:3"):
        assert str(parse_restart_policy(text)) == text


def test_decision_follows_docker() -> None:
    on_failure_2 = RestartPolicy("on-failure", 2)
    assert should_restart(on_failure_2, 1, 0, False)
    assert should_restart(on_failure_2, 1, 1, False)
    assert not should_restart(on_failure_2, 1, 2, False)  # retries used up
    assert not should_restart(on_failure_2, 0, 0, False)  # success is not a failure
    assert should_restart(RestartPolicy("on-failure"), 1, 1000, False)  # :0 = unlimited
    assert should_restart(RestartPolicy("always"), 0, 50, False)
    assert should_restart(RestartPolicy("unless-stopped"), 0, 0, False)
    for name in ("always", "unless-stopped", "on-failure"):
        assert not should_restart(RestartPolicy(name), 1, 0, True)  # stopped by the user
    assert not should_restart(RestartPolicy("no"), 1, 0, False)


def test_backoff_doubles_caps_and_resets_after_a_long_run() -> None:
    delays, d = [], 0.0
    for _ in range(12):
        d = next_backoff(d, run_seconds=0.5)
        delays.append(d)
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert delays[-1] == BACKOFF_MAX and max(delays) == BACKOFF_MAX
    assert next_backoff(BACKOFF_MAX, run_seconds=10.0) == 0.1
    assert next_backoff(0.4, run_seconds=9.9) == 0.8


def _args(**kw: object) -> argparse.Namespace:
    from paas.cli.parser import Parser
    from paas.runtime.options import add_run_flags

    parser = Parser(prog="paas container:run")
    add_run_flags(parser)
    ns = parser.parse_args(["-d", "--network", "none", "debian"])
    for key, value in kw.items():
        setattr(ns, key, value)
    return ns


def test_cli_validates_restart_and_refuses_it_with_rm() -> None:
    assert parse_run_options(_args(restart="on-failure:2")).restart == "on-failure:2"
    with pytest.raises(InvalidArgument):
        parse_run_options(_args(restart="sometimes"))
    with pytest.raises(InvalidArgument, match="--rm"):
        parse_run_options(_args(restart="always", rm=True))
    with pytest.raises(InvalidArgument, match="--rm"):
        parse_run_options(_args(restart="always", rm=True, detach=False))
    assert parse_run_options(_args(restart="no", rm=True)).auto_remove


def test_status_text_of_a_restarting_container() -> None:
    cfg = ContainerConfig(image="debian:bookworm", image_id="sha256:x", args=("true",))
    c = Container(id="a" * 64, name="x", config=cfg, state="restarting", created=0.0,
                  exit_code=1, finished_at=100.0)
    assert status_text(c, now=102.0) == "Restarting (1) 2 seconds ago"


def test_scheduler_runs_in_deadline_order_on_one_thread() -> None:
    s = Scheduler("test-timers")
    got: list[tuple[str, str]] = []
    done = threading.Event()
    try:
        def late() -> None:
            got.append(("late", threading.current_thread().name))
            done.set()

        s.call_later(0.15, late)
        s.call_later(0.05, lambda: got.append(("early", threading.current_thread().name)))
        assert s.pending() == 2
        start = time.monotonic()
        assert done.wait(5)
        assert time.monotonic() - start >= 0.14
        assert [g[0] for g in got] == ["early", "late"]
        assert {g[1] for g in got} == {"test-timers"}
    finally:
        s.stop()
