"""The renewal run against fakes and a fake clock: what is due, every failure path
(the current certificate stays, the error is recorded, retries back off), skips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes import Cert, FakeCA, FakeSink, FakeWebroot, state_db

from paas.acme.renew import RETRY_MAX, Renewer, backoff, due_reason, renew_at
from paas.acme.store import AcmeStore
from paas.errors import FailedPrecondition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86400.0
DOMAINS = ["a.example.com", "b.example.com"]


class Clock:
    def __init__(self) -> None:
        self.t = T0.timestamp()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def env():
    conn = state_db()
    conn.execute("INSERT INTO apps (name, created) VALUES ('web', 0), ('api', 0)")
    store = AcmeStore(conn)
    ca, web, sink, clock = FakeCA(), FakeWebroot(), FakeSink(now=T0), Clock()
    connects: list[int] = []

    def connect() -> FakeCA:
        connects.append(1)
        return ca

    r = Renewer(store, lambda app: list(DOMAINS), sink, connect, web, graceperiod=30 * 86400,
                clock=clock, retry_base=3600)
    return r, store, ca, sink, clock, connects


def test_due_at_30_days_for_a_90_day_certificate_and_a_third_for_short_ones() -> None:
    cert = Cert("acme", tuple(DOMAINS), T0, T0 + timedelta(days=90))
    assert renew_at(cert, 30 * 86400) == T0 + timedelta(days=60)
    short = Cert("acme", tuple(DOMAINS), T0, T0 + timedelta(days=6))
    assert renew_at(short, 30 * 86400) == T0 + timedelta(days=4)
    assert due_reason(cert, DOMAINS, T0 + timedelta(days=59), 30 * 86400) == ""
    assert due_reason(cert, DOMAINS, T0 + timedelta(days=61), 30 * 86400) == "expires in 29 days"
    assert due_reason(cert, DOMAINS[:1], T0, 30 * 86400) == "the app's domains changed"
    assert due_reason(None, DOMAINS, T0, 30 * 86400) == "no certificate installed"


def test_backoff_doubles_up_to_a_day() -> None:
    assert [backoff(n, 3600) for n in (1, 2, 3)] == [3600, 7200, 14400]
    assert backoff(20, 3600) == RETRY_MAX


def test_issue_enables_and_records_success(env) -> None:
    r, store, _ca, _sink, clock, _ = env
    r.issue("web")
    state = store.get("web")
    assert state and state.enabled and state.last_success == clock.t and not state.last_error


def test_a_failed_first_issue_records_the_error_but_does_not_enable(env) -> None:
    r, store, ca, sink, _clock, _ = env
    ca.fail["b.example.com"] = "no route"
    with pytest.raises(FailedPrecondition, match="b.example.com: no route"):
        r.issue("web")
    state = store.get("web")
    assert state and not state.enabled and "b.example.com: no route" in state.last_error
    assert sink.certs == {}


def test_nothing_due_makes_no_request(env) -> None:
    r, _store, _ca, _sink, clock, connects = env
    r.issue("web")
    connects.clear()
    clock.t += 10 * DAY
    assert [o.result for o in r.run()] == ["not-due"]
    assert connects == []


def test_due_certificate_is_renewed_with_its_key(env) -> None:
    r, _store, _ca, sink, clock, _ = env
    r.issue("web")
    key = sink.certs["web"].key
    clock.t += 61 * DAY
    sink.now = datetime.fromtimestamp(clock.t, UTC)
    [out] = r.run()
    assert out.result == "renewed" and out.detail == "expires in 29 days"
    assert sink.certs["web"].key == key and sink.certs["web"].not_before == sink.now


@pytest.mark.parametrize("failure", ["connect", "validate", "finalize", "install"])
def test_a_failed_renewal_keeps_the_certificate_records_and_backs_off(env, failure) -> None:
    r, store, ca, sink, clock, _ = env
    r.issue("web")
    old = sink.certs["web"]
    clock.t += 61 * DAY
    if failure == "connect":
        def refuse():
            raise FailedPrecondition("cannot reach the ACME server https://x: refused")
        r._connect = refuse
        r._ca = None
    elif failure == "validate":
        ca.fail["a.example.com"] = "timeout"
    elif failure == "finalize":
        ca.refuse_finalize = "the ACME server refused: rate limited"
    else:
        sink.refuse = "the certificate does not match the key"
    [out] = r.run()
    assert out.result == "failed" and out.detail
    assert sink.certs["web"] is old  # still serving
    state = store.get("web")
    assert state and state.failures == 1 and state.last_error == out.detail
    assert state.next_attempt == clock.t + 3600
    # within the backoff: no attempt; after it: one more, and the delay doubles
    clock.t += 1800
    assert [o.result for o in r.run()] == ["waiting"]
    clock.t += 1800
    assert [o.result for o in r.run()] == ["failed"]
    state = store.get("web")
    assert state and state.failures == 2 and state.next_attempt == clock.t + 7200
    assert r.next_wake() == clock.t + 7200
    # fixed: the next attempt succeeds and clears the error
    ca.fail.clear()
    ca.refuse_finalize = sink.refuse = ""
    r._connect = lambda: ca
    clock.t += 7200
    assert [o.result for o in r.run()] == ["renewed"]
    state = store.get("web")
    assert state and state.failures == 0 and state.last_error == "" and state.next_attempt is None


def test_a_manual_run_ignores_the_backoff(env) -> None:
    r, _store, ca, _sink, clock, _ = env
    r.issue("web")
    clock.t += 61 * DAY
    ca.fail["a.example.com"] = "timeout"
    r.run()
    ca.fail.clear()
    assert [o.result for o in r.run(["web"], force=True)] == ["renewed"]


def test_skips_disabled_apps_and_manual_certificates(env) -> None:
    r, store, _ca, sink, _clock, _ = env
    assert r.renew_app("web").result == "skipped"
    store.set_enabled("api", True)
    sink.certs["api"] = Cert("manual", tuple(DOMAINS), T0, T0 + timedelta(days=1))
    out = r.renew_app("api")
    assert out.result == "skipped" and "manual" in out.detail


def test_an_enabled_app_without_a_certificate_is_issued(env) -> None:
    r, store, _ca, _sink, _clock, _ = env
    store.set_enabled("web", True)
    assert [o.result for o in r.run()] == ["issued"]
