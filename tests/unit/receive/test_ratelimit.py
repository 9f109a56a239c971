"""Failed HTTP logins per address: counting, blocking, backoff, sharing, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.errors import InvalidArgument
from paas.receive.ratelimit import FailedLogins, Policy, client_address, rate_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limiter(tmp_path: Path, clock: Clock, **kw: object) -> FailedLogins:
    policy = Policy(**{"max_failures": 3, "window": 60.0, "block": 10.0, **kw})  # type: ignore[arg-type]
    return FailedLogins(str(tmp_path / "auth" / "failures.db"), policy, clock)


def test_blocked_after_max_failures_within_the_window(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock)
    assert f.failed("192.0.2.1") == 0 and f.failed("192.0.2.1") == 0
    assert f.blocked("192.0.2.1") == 0
    assert f.failed("192.0.2.1") == 10.0
    assert f.blocked("192.0.2.1") == 10.0
    clock.now += 4
    assert f.blocked("192.0.2.1") == 6.0
    assert f.blocked("192.0.2.2") == 0  # others are not affected


def test_failures_spread_over_more_than_a_window_do_not_block(tmp_path: Path,
                                                                clock: Clock) -> None:
    f = limiter(tmp_path, clock)
    for _ in range(10):
        assert f.failed("192.0.2.1") == 0
        clock.now += 31  # two per window at most
    assert f.blocked("192.0.2.1") == 0


def test_each_block_in_a_row_doubles_up_to_max_block(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock, max_block=35.0)
    waits = []
    for _ in range(4):
        for _ in range(3):
            wait = f.failed("192.0.2.1")
        waits.append(wait)
        clock.now += wait
        assert f.blocked("192.0.2.1") == 0
    assert waits == [10.0, 20.0, 35.0, 35.0]


def test_success_forgets_only_its_own_address(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock)
    for _ in range(3):
        f.failed("192.0.2.1")
    f.failed("192.0.2.2")
    f.failed("192.0.2.2")
    f.succeeded("192.0.2.3")
    f.succeeded("192.0.2.1")  # a success while blocked does not lift the block
    assert f.blocked("192.0.2.1") == 10.0
    f.succeeded("192.0.2.2")
    assert f.failed("192.0.2.2") == 0  # its count started again


def test_two_processes_share_one_counter(tmp_path: Path, clock: Clock) -> None:
    """Two gunicorn workers: separate connections to the same file."""
    a, b = limiter(tmp_path, clock), limiter(tmp_path, clock)
    a.failed("192.0.2.1")
    b.failed("192.0.2.1")
    assert a.failed("192.0.2.1") == 10.0
    assert b.blocked("192.0.2.1") == 10.0


def test_the_table_is_bounded_and_keeps_blocked_addresses(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock, max_rows=5)
    for _ in range(3):
        f.failed("192.0.2.1")
    for i in range(50):
        clock.now += 0.01
        f.failed(f"198.51.100.{i}")
    rows = f._db().execute("SELECT addr FROM failures").fetchall()
    assert len(rows) == 5
    assert ("192.0.2.1",) in rows and f.blocked("192.0.2.1") > 0


def test_quiet_addresses_are_pruned(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock, max_block=100.0)
    f.failed("192.0.2.1")
    clock.now += 101
    f.failed("192.0.2.2")
    assert f._db().execute("SELECT addr FROM failures").fetchall() == [("192.0.2.2",)]


def test_the_file_and_its_directory_are_root_only(tmp_path: Path, clock: Clock) -> None:
    f = limiter(tmp_path, clock)
    f.failed("192.0.2.1")
    assert (tmp_path / "auth").stat().st_mode & 0o777 == 0o700
    for p in (tmp_path / "auth").iterdir():
        assert p.stat().st_mode & 0o077 == 0, p


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert rate_key("2001:db8:1:2:3:4:5:6") == rate_key("2001:db8:1:2:ffff::1") == \
        "2001:db8:1:2::/64"
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert rate_key("192.0.2.7") == "192.0.2.7"


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    env = {"REMOTE_ADDR": "192.0.2.9", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}
    assert client_address(env, frozenset()) == "192.0.2.9"
    assert client_address(env, frozenset({"10.0.0.1"})) == "192.0.2.9"
    proxied = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"}
    # the client may send its own X-Forwarded-For: only the proxy's entry counts
    assert client_address(proxied, frozenset({"10.0.0.1"})) == "203.0.113.5"
    assert client_address({"REMOTE_ADDR": "10.0.0.1"}, frozenset({"10.0.0.1"})) == "10.0.0.1"


def test_policy_from_env() -> None:
    assert Policy.from_env({}) == Policy()
    p = Policy.from_env({"PAAS_HTTP_GIT_MAX_FAILURES": "5", "PAAS_HTTP_GIT_BLOCK": "2",
                         "PAAS_HTTP_GIT_TRUSTED_PROXIES": "127.0.0.1, ::1"})
    assert (p.max_failures, p.block, p.trusted_proxies) == (5, 2.0, frozenset({"127.0.0.1", "::1"}))
    for bad in ({"PAAS_HTTP_GIT_MAX_FAILURES": "zero"}, {"PAAS_HTTP_GIT_BLOCK": "-1"},
                {"PAAS_HTTP_GIT_TRUSTED_PROXIES": "proxy.example"}):
        with pytest.raises(InvalidArgument):
            Policy.from_env(bad)
