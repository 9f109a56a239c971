"""ACME state in state.db (migration 14): ``letsencrypt:set --global`` keys and each
app's record (enabled, last error, failures in a row, retry schedule).

``SETTING_KEYS`` validates keys and values; ``settings`` applies the defaults
(``PAAS_LETSENCRYPT_RENEW_DAYS`` for the grace period). Not here: talking to the CA.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping

from ..errors import InvalidArgument
from ..state.db import transaction
from .model import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, AcmeSettings, AppState

__all__ = ["SETTING_KEYS", "AcmeStore", "validate_email", "validate_server"]

_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


def validate_email(value: str) -> str:
    """An address the CA will accept as ``mailto:`` contact: local@domain.tld."""
    if not _EMAIL_RE.fullmatch(value) or len(value) > 254:
        raise InvalidArgument(f"{value!r} is not an email address",
                              "give one like admin@example.com")
    return value


def validate_server(value: str) -> str:
    """An ACME directory URL; ``staging``/``production`` are Let's Encrypt's."""
    shortcuts = {"staging": LETSENCRYPT_STAGING, "production": LETSENCRYPT_PRODUCTION}
    value = shortcuts.get(value, value)
    if not re.fullmatch(r"https://[A-Za-z0-9.\[\]:-]+(?::\d+)?(?:/[\x21-\x7e]*)?", value):
        raise InvalidArgument(f"{value!r} is not an ACME directory URL",
                              "use https://HOST/PATH of the directory, or staging/production")
    return value


def _graceperiod(value: str) -> str:
    if not value.isdigit() or not 3600 <= int(value) <= 365 * 86400:
        raise InvalidArgument(f"graceperiod {value!r} is not a number of seconds",
                              "renew this many seconds before expiry: 3600 to 31536000 "
                              "(default 2592000, 30 days)")
    return str(int(value))


SETTING_KEYS: dict[str, Callable[[str], str]] = {
    "email": validate_email,
    "server": validate_server,
    "graceperiod": _graceperiod,
}


def _check_key(key: str) -> Callable[[str], str]:
    try:
        return SETTING_KEYS[key]
    except KeyError:
        raise InvalidArgument(f"unknown letsencrypt setting {key!r}",
                              "valid keys: " + ", ".join(SETTING_KEYS)) from None


def _renew_days(env: Mapping[str, str]) -> int:
    value = env.get("PAAS_LETSENCRYPT_RENEW_DAYS") or "30"
    if not value.isdigit() or not 1 <= int(value) <= 365:
        raise InvalidArgument(f"PAAS_LETSENCRYPT_RENEW_DAYS={value!r} is not a number of days",
                              "use 1 to 365 (default 30)")
    return int(value)


def _state(row: sqlite3.Row) -> AppState:
    return AppState(app=row["app"], enabled=bool(row["enabled"]), last_error=row["last_error"],
                    failures=row["failures"], last_attempt=row["last_attempt"],
                    next_attempt=row["next_attempt"], last_success=row["last_success"])


class AcmeStore:
    """The queries of ``acme_settings`` and ``acme_apps``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- settings
    def raw_settings(self) -> dict[str, str]:
        return {r["key"]: r["value"]
                for r in self.conn.execute("SELECT key, value FROM acme_settings ORDER BY key")}

    def settings(self, env: Mapping[str, str]) -> AcmeSettings:
        raw = self.raw_settings()
        grace = int(raw["graceperiod"]) if "graceperiod" in raw else _renew_days(env) * 86400
        return AcmeSettings(email=raw.get("email", ""),
                            server=raw.get("server", LETSENCRYPT_PRODUCTION), graceperiod=grace)

    def set_setting(self, key: str, value: str) -> str:
        value = _check_key(key)(value)
        with transaction(self.conn) as c:
            c.execute("INSERT INTO acme_settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                      "DO UPDATE SET value = excluded.value", (key, value))
        return value

    def unset_setting(self, key: str) -> None:
        _check_key(key)
        with transaction(self.conn) as c:
            c.execute("DELETE FROM acme_settings WHERE key = ?", (key,))

    # -- apps
    def get(self, app: str) -> AppState | None:
        row = self.conn.execute("SELECT * FROM acme_apps WHERE app = ?", (app,)).fetchone()
        return _state(row) if row else None

    def list(self, *, enabled_only: bool = False) -> list[AppState]:
        where = " WHERE enabled = 1" if enabled_only else ""
        return [_state(r) for r in
                self.conn.execute(f"SELECT * FROM acme_apps{where} ORDER BY app")]

    def set_enabled(self, app: str, enabled: bool) -> None:
        with transaction(self.conn) as c:
            c.execute("INSERT INTO acme_apps (app, enabled) VALUES (?, ?) ON CONFLICT(app) "
                      "DO UPDATE SET enabled = excluded.enabled", (app, int(enabled)))
            if not enabled:
                c.execute("UPDATE acme_apps SET next_attempt = NULL, failures = 0 "
                          "WHERE app = ?", (app,))

    def record_success(self, app: str, now: float) -> None:
        with transaction(self.conn) as c:
            c.execute("INSERT INTO acme_apps (app, enabled) VALUES (?, 0) "
                      "ON CONFLICT(app) DO NOTHING", (app,))
            c.execute("UPDATE acme_apps SET last_error = '', failures = 0, last_attempt = ?, "
                      "next_attempt = NULL, last_success = ? WHERE app = ?", (now, now, app))

    def record_failure(self, app: str, error: str, now: float, next_attempt: float) -> AppState:
        with transaction(self.conn) as c:
            c.execute("INSERT INTO acme_apps (app, enabled) VALUES (?, 0) "
                      "ON CONFLICT(app) DO NOTHING", (app,))
            c.execute("UPDATE acme_apps SET last_error = ?, failures = failures + 1, "
                      "last_attempt = ?, next_attempt = ? WHERE app = ?",
                      (error, now, next_attempt, app))
        state = self.get(app)
        assert state is not None
        return state

    def forget(self, app: str) -> None:
        with transaction(self.conn) as c:
            c.execute("DELETE FROM acme_apps WHERE app = ?", (app,))
