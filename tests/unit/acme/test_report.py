"""The pure renderers of ACME state: letsencrypt:list rows, paas report's section,
apps:info's field; and paasd's renewal thread settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakes import Cert

from paas.acme.model import AppState
from paas.cli.apps import letsencrypt_field
from paas.cli.letsencrypt import list_rows
from paas.daemon.renewals import DEFAULT_INTERVAL, check_interval
from paas.doctor.acme import checks

NOW = datetime(2026, 3, 1, tzinfo=UTC)
CERT = Cert("acme", ("a.example.com",), NOW - timedelta(days=10), NOW + timedelta(days=80))


def test_list_rows_expiry_days_left_next_renewal_and_errors() -> None:
    failing = AppState("api", failures=2, last_error="boom",
                       next_attempt=(NOW + timedelta(days=70)).timestamp())
    rows = list_rows([AppState("web"), failing, AppState("off", enabled=False)],
                     {"web": CERT, "api": CERT, "off": None}, 30 * 86400, NOW)
    web, api, off = rows
    assert web["days_left"] == 80 and web["expiry"] == "2026-05-20T00:00:00+00:00"
    assert web["next_renewal"] == "2026-04-20T00:00:00+00:00" and web["domains"] == ["a.example.com"]
    assert api["next_renewal"] == "2026-05-10T00:00:00+00:00" and api["last_error"] == "boom"
    assert off["next_renewal"] is None and off["expiry"] is None and not off["enabled"]


def test_report_flags_failing_renewals_and_near_expiry_only() -> None:
    soon = Cert("acme", ("b.example.com",), NOW - timedelta(days=85), NOW + timedelta(days=5))
    out = checks([AppState("web"), AppState("api", failures=3, last_error="x: no route"),
                  AppState("old"), AppState("off", enabled=False)],
                 {"web": CERT, "api": CERT, "old": soon}, NOW)
    assert [c.name for c in out] == ["web", "api", "old"]
    web, api, old = out
    assert web.ok and web.value == "expires 2026-05-20 (80 days)"
    assert "failed to renew 3 time(s): x: no route" in api.problem
    assert "letsencrypt:auto-renew api" in api.fix and "serves until 2026-05-20" in api.fix
    assert "less than 7 days" in old.problem


def test_apps_info_field() -> None:
    assert letsencrypt_field(None) == "off"
    assert letsencrypt_field(AppState("web", enabled=False)) == "off"
    assert letsencrypt_field(AppState("web")) == "on"
    assert letsencrypt_field(AppState("web", last_error="e")) == "on (renewal failing: e)"


def test_check_interval() -> None:
    assert check_interval({}) == DEFAULT_INTERVAL
    assert check_interval({"PAAS_LETSENCRYPT_CHECK_INTERVAL": "0.5"}) == 0.5
    assert check_interval({"PAAS_LETSENCRYPT_CHECK_INTERVAL": "soon"}) == DEFAULT_INTERVAL
