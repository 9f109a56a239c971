"""paasd renews short-lived certificates by itself: pebble issues 30-second certificates
(due after 20 s, a third of their life), paasd checks every half second
(``PAAS_LETSENCRYPT_CHECK_INTERVAL``). A renewal that fails (the domain stops
resolving) keeps the current certificate serving, is recorded and retried with
backoff (``PAAS_LETSENCRYPT_RETRY_SECONDS``); once the cause is fixed it renews.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from acme_instance import Instance, acme_instance

VALIDITY = 30


@pytest.fixture(scope="module")
def inst(instance_tools: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with acme_instance(instance_tools, tmp_path_factory.mktemp("pebble"), validity=VALIDITY,
                       PAAS_LETSENCRYPT_CHECK_INTERVAL="0.5",
                       PAAS_LETSENCRYPT_RETRY_SECONDS="1") as inst:
        yield inst


def _wait(what: str, pred: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout}s")


def test_paasd_renews_before_expiry_and_retries_a_failed_renewal(inst: Instance) -> None:
    inst.app("short", "short.example.com")
    inst.cli("letsencrypt:enable", "short")
    first = inst.serial("short.example.com")
    row = inst.listing()["short"]
    assert row["days_left"] == 0 and row["next_renewal"] < row["expiry"]
    # not due yet: a manual run renews nothing
    assert "short: not-due" in inst.cli("letsencrypt:auto-renew").stdout
    inst.cli("daemon:start")
    second = _wait("a renewal by paasd",
                   lambda: (s := inst.serial("short.example.com")) != first and s, VALIDITY)
    assert inst.curl("short.example.com").stdout == "503 0"
    assert inst.listing()["short"]["last_error"] == ""

    inst.pebble.clear_a("short.example.com")  # the next renewal fails
    row = _wait("a failed renewal recorded",
                lambda: (r := inst.listing()["short"])["failures"] >= 2 and r, VALIDITY)
    assert "short.example.com" in row["last_error"]
    assert inst.serial("short.example.com") == second  # still serving
    assert inst.curl("short.example.com").stdout == "503 0"
    report = json.loads(inst.cli("report", "--format", "json", check=False).stdout)
    [check] = [c for c in report["checks"] if c["section"] == "letsencrypt"]
    assert not check["ok"] and "failed to renew" in check["problem"]

    inst.pebble.add_a("short.example.com")  # fixed: the next retry renews
    _wait("a renewal after the fix",
          lambda: inst.listing()["short"]["last_error"] == "", 15)
    assert inst.serial("short.example.com") not in (first, second)
    log = (Path(inst.env["PAAS_ROOT"]) / "run" / "paasd.log").read_text()
    assert "certificate of short renewed" in log
    assert "BEGIN" not in log  # no key or certificate in paasd's log
