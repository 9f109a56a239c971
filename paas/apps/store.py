"""The app registry in SQLite: apps, their config vars, domains, settings and formation.

Every input is validated (``validate``, ``settings``) before a row is written, and
every write is one transaction; when the caller already holds one (deploy wrapping
several steps), a SAVEPOINT nests inside it instead. Child tables reference
``apps(name)`` with ON UPDATE / ON DELETE CASCADE, so ``rename`` is one UPDATE and
``remove`` one DELETE. Who owns a domain (added ones, every app's default name) and
which names nobody may claim: the rules of ``paas.apps.domains``, enforced here.

Not here: anything outside the database (repositories, containers, nginx,
releases); ``paas.deploy`` does those around these calls.
"""

from __future__ import annotations

import builtins
import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from ..state import transaction
from . import domains as owner_rules
from .settings import SETTINGS, validate_setting, validate_setting_key
from .validate import (
    validate_app_name,
    validate_config_key,
    validate_config_value,
    validate_domain,
    validate_process_type,
)

if TYPE_CHECKING:
    from .publicsuffix import SuffixList

__all__ = ["DEFAULT_DOMAIN", "MAX_SCALE", "SETTINGS", "AppRecord", "AppStore", "need_app"]

DEFAULT_DOMAIN = "localhost"  # apps get APP.localhost without a global domain
MAX_SCALE = 100
_GLOBAL_DOMAIN_KEY = "domain"
_MAX_GLOBAL_DOMAIN = 253 - 64  # room for "APP." in front


@dataclass(frozen=True)
class AppRecord:
    name: str
    created: float
    settings: tuple[tuple[str, str], ...] = ()  # explicitly set ones, sorted by key

    def setting(self, key: str) -> str:
        """The stored value, else the known default ('' for unknown keys)."""
        for k, v in self.settings:
            if k == key:
                return v
        return SETTINGS[key].default if key in SETTINGS else ""


def need_app(conn: sqlite3.Connection, name: str) -> str:
    """``name``, validated and existing; InvalidArgument or NotFound otherwise."""
    validate_app_name(name)
    if conn.execute("SELECT 1 FROM apps WHERE name = ?", (name,)).fetchone() is None:
        raise NotFound(f"app {name} does not exist", "list apps with: paas apps:list")
    return name


class AppStore:
    def __init__(self, conn: sqlite3.Connection, suffixes: SuffixList | None = None) -> None:
        """``suffixes``: the public suffix list (default: the system's, read when a
        domain is claimed)."""
        self.conn = conn
        self._suffixes = suffixes

    @property
    def suffixes(self) -> SuffixList:
        if self._suffixes is None:
            from .publicsuffix import load

            self._suffixes = load()
        return self._suffixes

    # -- plumbing --------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if not self.conn.in_transaction:
            with transaction(self.conn):
                yield self.conn
            return
        self.conn.execute("SAVEPOINT apps")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK TO apps")
            self.conn.execute("RELEASE apps")
            raise
        self.conn.execute("RELEASE apps")

    def _need(self, name: str) -> str:
        return need_app(self.conn, name)

    # -- apps ------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM apps WHERE name = ?", (name,)).fetchone()
        return row is not None

    def create(self, name: str) -> AppRecord:
        validate_app_name(name)
        with self._write() as c:
            if self.exists(name):
                raise AlreadyExists(f"app {name} already exists",
                                    "pick another name, or see it with: paas apps:info " + name)
            self._default_free(name, self._global_or_default())
            created = time.time()
            c.execute("INSERT INTO apps (name, created) VALUES (?, ?)", (name, created))
        return AppRecord(name, created)

    def get(self, name: str) -> AppRecord:
        validate_app_name(name)
        row = self.conn.execute("SELECT name, created FROM apps WHERE name = ?",
                                (name,)).fetchone()
        if row is None:
            raise NotFound(f"app {name} does not exist", "list apps with: paas apps:list")
        return AppRecord(str(row[0]), float(row[1]), self._settings_of(name))

    def list(self) -> list[AppRecord]:
        settings: dict[str, list[tuple[str, str]]] = {}
        for app, key, value in self.conn.execute(
                "SELECT app, key, value FROM app_settings ORDER BY app, key"):
            settings.setdefault(str(app), []).append((str(key), str(value)))
        rows = self.conn.execute("SELECT name, created FROM apps ORDER BY name").fetchall()
        return [AppRecord(str(n), float(c), tuple(settings.get(str(n), ()))) for n, c in rows]

    def rename(self, old: str, new: str) -> AppRecord:
        """Rename in the database only (the caller moves repositories, containers...)."""
        validate_app_name(new)
        with self._write() as c:
            self._need(old)
            if self.exists(new):
                raise AlreadyExists(f"app {new} already exists", "pick another name")
            self._default_free(new, self._global_or_default())
            c.execute("UPDATE apps SET name = ? WHERE name = ?", (new, old))
        return self.get(new)

    def remove(self, name: str) -> None:
        """Delete the app and all its rows (config, domains, settings, formation)."""
        with self._write() as c:
            self._need(name)
            c.execute("DELETE FROM apps WHERE name = ?", (name,))

    # -- config vars -----------------------------------------------------------------
    def config(self, name: str) -> dict[str, str]:
        self._need(name)
        rows = self.conn.execute("SELECT key, value FROM app_config WHERE app = ? ORDER BY key",
                                 (name,)).fetchall()
        return {str(k): str(v) for k, v in rows}

    def set_config(self, name: str, pairs: Iterable[tuple[str, str]] | Mapping[str, str]
                   ) -> dict[str, str]:
        """Set the given vars (later pairs win); return the app's whole new config."""
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        checked = [(validate_config_key(k), validate_config_value(v)) for k, v in items]
        with self._write() as c:
            self._need(name)
            c.executemany("INSERT OR REPLACE INTO app_config (app, key, value) VALUES (?, ?, ?)",
                          [(name, k, v) for k, v in checked])
        return self.config(name)

    def unset_config(self, name: str, keys: Iterable[str]) -> dict[str, str]:
        """Remove the given vars (unknown ones are ignored); return the new config."""
        checked = [validate_config_key(k) for k in keys]
        with self._write() as c:
            self._need(name)
            c.executemany("DELETE FROM app_config WHERE app = ? AND key = ?",
                          [(name, k) for k in checked])
        return self.config(name)

    # -- domains ---------------------------------------------------------------------
    def domains(self, name: str) -> builtins.list[str]:
        """The app's own domains, sorted (empty: it uses ``default_domains``)."""
        self._need(name)
        rows = self.conn.execute("SELECT domain FROM app_domains WHERE app = ? ORDER BY domain",
                                 (name,)).fetchall()
        return [str(r[0]) for r in rows]

    def _added_by(self, domain: str) -> str | None:
        row = self.conn.execute("SELECT app FROM app_domains WHERE domain = ?",
                                (domain,)).fetchone()
        return str(row[0]) if row else None

    def _default_of(self, domain: str, glob: str) -> str | None:
        """The existing app whose default name (``APP.glob``) ``domain`` is."""
        head, dot, tail = domain.partition(".")
        return head if dot and tail == glob and self.exists(head) else None

    def owner_of(self, domain: str) -> str | None:
        """The app ``domain`` belongs to: the app it is the default name of (reserved
        for it, even while off), else the app that added it; None when free."""
        return self._default_of(domain, self._global_or_default()) or self._added_by(domain)

    def _default_free(self, app: str, glob: str) -> None:
        """Refuse a new name or global domain under which ``app``'s default name would be
        a domain another app added (nginx would answer it from that app)."""
        default = f"{app}.{glob}"
        other = self._added_by(default)
        if other is not None and other != app:
            raise Conflict(
                f"the default domain {default} of app {app} belongs to app {other}",
                f"pick another app name, or free it first: paas domains:remove {other} "
                f"{default}")

    def claims(self) -> dict[str, str]:
        """Every name some app is served on -> that app."""
        out = {}
        for r in self.list():
            for d in self.effective_domains(r.name):
                out[d] = r.name
        return out

    def _claim(self, name: str, domains: builtins.list[str]) -> None:
        for d in domains:
            owner_rules.check_claimable(d, self.suffixes)
            owner = self.owner_of(d)
            if owner is not None and owner != name:
                if self._added_by(d) == owner:
                    hint = f"remove it there first: paas domains:remove {owner} {d}"
                else:
                    hint = f"it is the default domain of app {owner}; pick another name"
                raise Conflict(f"domain {d} belongs to app {owner}", hint)
        self.conn.executemany("INSERT OR IGNORE INTO app_domains (domain, app) VALUES (?, ?)",
                              [(d, name) for d in domains])

    def add_domains(self, name: str, domains: Iterable[str]) -> builtins.list[str]:
        checked = _domains(domains)
        with self._write():
            self._need(name)
            self._claim(name, checked)
        return self.domains(name)

    def remove_domains(self, name: str, domains: Iterable[str]) -> builtins.list[str]:
        """Remove the given domains from the app (ones it does not have are ignored)."""
        checked = _domains(domains)
        with self._write() as c:
            self._need(name)
            c.executemany("DELETE FROM app_domains WHERE app = ? AND domain = ?",
                          [(name, d) for d in checked])
            if set(self.default_domains(name)) & set(checked):
                self._default_domain(c, name, "off")
        return self.domains(name)

    def set_domains(self, name: str, domains: Iterable[str]) -> builtins.list[str]:
        """Replace the app's domains, the default one included (an empty list: back to
        only the default domain)."""
        checked = _domains(domains)
        with self._write() as c:
            self._need(name)
            c.execute("DELETE FROM app_domains WHERE app = ?", (name,))
            self._claim(name, checked)
            self._default_domain(c, name, "off" if checked else "on")
        return self.domains(name)

    @staticmethod
    def _default_domain(c: sqlite3.Connection, name: str, value: str) -> None:
        c.execute("INSERT OR REPLACE INTO app_settings (app, key, value) VALUES (?, ?, ?)",
                  (name, "default-domain", value))

    def global_domain(self) -> str | None:
        row = self.conn.execute("SELECT value FROM global_settings WHERE key = ?",
                                (_GLOBAL_DOMAIN_KEY,)).fetchone()
        return str(row[0]) if row else None

    def set_global_domain(self, domain: str | None) -> str | None:
        """Set (or with None, clear) the domain apps get ``APP.DOMAIN`` under."""
        if domain is None:
            with self._write() as c:
                for r in self.list():
                    self._default_free(r.name, DEFAULT_DOMAIN)
                c.execute("DELETE FROM global_settings WHERE key = ?", (_GLOBAL_DOMAIN_KEY,))
            return None
        d = validate_domain(domain)
        if d.startswith("*."):
            raise InvalidArgument(f"invalid global domain {domain!r}: no wildcards",
                                  "apps get APP.DOMAIN: give the parent domain, e.g. example.com")
        if len(d) > _MAX_GLOBAL_DOMAIN:
            raise InvalidArgument(f"global domain {d[:64]}... is too long",
                                  f"use at most {_MAX_GLOBAL_DOMAIN} characters")
        owner_rules.check_global(d, self.suffixes)
        with self._write() as c:
            for r in self.list():
                self._default_free(r.name, d)
            c.execute("INSERT OR REPLACE INTO global_settings (key, value) VALUES (?, ?)",
                      (_GLOBAL_DOMAIN_KEY, d))
        return d

    def _global_or_default(self) -> str:
        return self.global_domain() or DEFAULT_DOMAIN

    def default_domains(self, name: str) -> builtins.list[str]:
        """``APP.GLOBAL`` with a global domain, else ``APP.localhost`` (like Dokku)."""
        validate_app_name(name)
        return [f"{name}.{self._global_or_default()}"]

    def effective_domains(self, name: str) -> builtins.list[str]:
        """The domains the app is served on: the default one (unless removed, or replaced
        by ``set_domains``), then its own, like Dokku's app vhosts. An added name that is
        another app's default (a database from before the ownership rules) is left out:
        one name, one server block."""
        default = self.default_domains(name) if self.setting(name, "default-domain") == "on" else []
        glob = self._global_or_default()
        own = [d for d in self.domains(name)
               if d not in default and self._default_of(d, glob) in (None, name)]
        return default + own

    # -- settings --------------------------------------------------------------------
    def _settings_of(self, name: str) -> tuple[tuple[str, str], ...]:
        rows = self.conn.execute("SELECT key, value FROM app_settings WHERE app = ? ORDER BY key",
                                 (name,)).fetchall()
        return tuple((str(k), str(v)) for k, v in rows)

    def settings(self, name: str) -> dict[str, str]:
        """The explicitly set settings of an app (defaults not included)."""
        self._need(name)
        return dict(self._settings_of(name))

    def setting(self, name: str, key: str, default: str | None = None) -> str:
        """The value of ``key``; unset: ``default``, or the known default when None."""
        spec = validate_setting_key(key)
        self._need(name)
        row = self.conn.execute("SELECT value FROM app_settings WHERE app = ? AND key = ?",
                                (name, key)).fetchone()
        if row is not None:
            return str(row[0])
        return spec.default if default is None else default

    def set_setting(self, name: str, key: str, value: str) -> str:
        """Validate and store; return the normalized value."""
        norm = validate_setting(key, value)
        with self._write() as c:
            self._need(name)
            c.execute("INSERT OR REPLACE INTO app_settings (app, key, value) VALUES (?, ?, ?)",
                      (name, key, norm))
        return norm

    def unset_setting(self, name: str, key: str) -> None:
        validate_setting_key(key)
        with self._write() as c:
            self._need(name)
            c.execute("DELETE FROM app_settings WHERE app = ? AND key = ?", (name, key))

    # -- formation -------------------------------------------------------------------
    def formation(self, name: str) -> dict[str, int]:
        """Process type -> container count, as scaled (empty: never scaled)."""
        self._need(name)
        rows = self.conn.execute(
            "SELECT type, count FROM app_formation WHERE app = ? ORDER BY type", (name,)
        ).fetchall()
        return {str(t): int(n) for t, n in rows}

    def set_formation(self, name: str, counts: Mapping[str, int]) -> dict[str, int]:
        """Set the counts of the given types (others unchanged); return the whole formation."""
        checked = []
        for ptype, count in counts.items():
            validate_process_type(ptype)
            if isinstance(count, bool) or not isinstance(count, int) \
                    or not 0 <= count <= MAX_SCALE:
                raise InvalidArgument(f"invalid count {count!r} for {ptype}",
                                      f"use a whole number from 0 to {MAX_SCALE}")
            checked.append((name, ptype, count))
        with self._write() as c:
            self._need(name)
            c.executemany(
                "INSERT OR REPLACE INTO app_formation (app, type, count) VALUES (?, ?, ?)", checked
            )
        return self.formation(name)


def _domains(domains: Iterable[str]) -> builtins.list[str]:
    """Validated, normalized, de-duplicated (first occurrence order)."""
    return list(dict.fromkeys(validate_domain(d) for d in domains))
