"""ContainerStore: container records in the state DB (no processes, no mounts).

Owns the ``containers`` table: create with unique names, resolve an ID prefix
or a name, state transitions, listing. The lifecycle module decides *when*
states change; this module only records them, each write in a transaction.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time

from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..model import Container, ContainerConfig, ContainerState
from ..state import transaction
from .codec import from_dict, to_dict

__all__ = ["ContainerStore", "config_from_json", "config_to_json", "new_id", "validate_name"]

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_ADJ = ("brave", "calm", "eager", "fond", "gifted", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "quirky", "serene", "sharp", "tender", "vivid", "wise", "zen", "bold", "clever")
_NOUNS = ("curie", "darwin", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace", "noether",
          "pascal", "ritchie", "shannon", "tesla", "thompson", "turing", "wozniak", "hypatia",
          "lamport", "liskov", "torvalds")


def new_id() -> str:
    return secrets.token_hex(32)


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid container name {name!r}",
            "names are 1-128 characters of [a-zA-Z0-9_.-] and start with a letter or digit",
        )
    return name


def config_to_json(cfg: ContainerConfig) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)


def config_from_json(text: str) -> ContainerConfig:
    return from_dict(ContainerConfig, json.loads(text))


def _row_to_container(row: sqlite3.Row) -> Container:
    return Container(
        id=row["id"],
        name=row["name"],
        config=config_from_json(row["config"]),
        state=row["state"],
        created=row["created"],
        pid=row["pid"],
        exit_code=row["exit_code"],
        oom_killed=bool(row["oom_killed"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        restart_count=row["restart_count"],
        stopped_by_user=bool(row["stopped_by_user"]),
    )


class ContainerStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _random_name(self) -> str:
        for _ in range(100):
            name = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUNS)}"
            if not self.conn.execute("SELECT 1 FROM containers WHERE name=?", (name,)).fetchone():
                return name
        return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUNS)}_{secrets.token_hex(2)}"

    def add(self, cid: str, name: str | None, cfg: ContainerConfig) -> Container:
        """Record a new container in state ``created``; AlreadyExists on a name clash."""
        with transaction(self.conn):
            if name is None:
                name = self._random_name()
            clash = self.conn.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
            if clash:
                raise AlreadyExists(
                    f'the container name "{name}" is already in use by container "{clash["id"][:12]}"',
                    f"remove it with 'paas container:rm {name}' or choose another --name",
                )
            self.conn.execute(
                "INSERT INTO containers (id, name, config, state, created) VALUES (?,?,?,?,?)",
                (cid, name, config_to_json(cfg), ContainerState.CREATED, time.time()),
            )
        return self.get(cid)

    def find(self, name: str) -> Container | None:
        """The container called exactly ``name`` (or with that full id), None if none."""
        row = self.conn.execute("SELECT * FROM containers WHERE id=? OR name=?",
                                (name, name)).fetchone()
        return _row_to_container(row) if row is not None else None

    def get(self, ref: str) -> Container:
        """Resolve a full ID, a name, or a unique ID prefix."""
        row = self.conn.execute("SELECT * FROM containers WHERE id=? OR name=?", (ref, ref)).fetchone()
        if row is None and re.fullmatch(r"[0-9a-f]{1,63}", ref):
            rows = self.conn.execute(
                "SELECT * FROM containers WHERE id LIKE ? LIMIT 2", (ref + "%",)
            ).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(
                    f"container ID prefix {ref!r} is ambiguous", "type more characters of the ID"
                )
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(
                f"no such container: {ref}", "run 'paas container:ps -a' to list containers"
            )
        return _row_to_container(row)

    def list_all(self, *, running_only: bool = False) -> list[Container]:
        q = "SELECT * FROM containers"
        if running_only:
            q += " WHERE state IN ('running', 'restarting')"
        q += " ORDER BY created DESC"
        return [_row_to_container(r) for r in self.conn.execute(q)]

    def set_running(self, cid: str, pid: int, pid_start: int | None) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE containers SET state=?, pid=?, pid_start=?, started_at=?, finished_at=NULL,"
                " exit_code=NULL, oom_killed=0, error='' WHERE id=?",
                (ContainerState.RUNNING, pid, pid_start, time.time(), cid),
            )

    def set_exited(self, cid: str, exit_code: int, *, oom_killed: bool = False, error: str = "",
                   restarting: bool = False) -> None:
        """Record an exit; ``restarting``: its restart policy restarts it, so it goes
        straight to ``restarting`` (never seen ``exited`` in between, as in Docker)."""
        state = ContainerState.RESTARTING if restarting else ContainerState.EXITED
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE containers SET state=?, pid=NULL, pid_start=NULL, exit_code=?, oom_killed=?,"
                " finished_at=?, error=? WHERE id=?",
                (state, exit_code, int(oom_killed), time.time(), error, cid),
            )

    def set_restarting(self, cid: str, restarting: bool = True) -> None:
        """An exited container waits for its restart policy (keeps exit code and finish
        time); ``restarting=False``: it does not after all (exited)."""
        state = ContainerState.RESTARTING if restarting else ContainerState.EXITED
        self._update(cid, "state=?", state)

    def set_stopped_by_user(self, cid: str, stopped: bool) -> None:
        """An explicit stop/kill disables the restart policy; an explicit start re-enables it."""
        if stopped:
            # a container waiting for its restart stays exited
            with transaction(self.conn):
                self.conn.execute(
                    "UPDATE containers SET stopped_by_user=1,"
                    " state=CASE state WHEN ? THEN ? ELSE state END WHERE id=?",
                    (ContainerState.RESTARTING, ContainerState.EXITED, cid))
        else:
            self._update(cid, "stopped_by_user=0, restart_count=0")

    def count_restart(self, cid: str) -> None:
        self._update(cid, "restart_count=restart_count+1")

    def _update(self, cid: str, assignments: str, *values: object) -> None:
        with transaction(self.conn):
            self.conn.execute(f"UPDATE containers SET {assignments} WHERE id=?", (*values, cid))

    def pid_start(self, cid: str) -> int | None:
        row = self.conn.execute("SELECT pid_start FROM containers WHERE id=?", (cid,)).fetchone()
        return None if row is None else row["pid_start"]

    def remove(self, cid: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM containers WHERE id=?", (cid,))

    def ids(self) -> list[str]:
        """Every container's id, whatever its state."""
        return [r["id"] for r in self.conn.execute("SELECT id FROM containers")]
