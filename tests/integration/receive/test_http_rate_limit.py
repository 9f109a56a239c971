"""Failed logins to ``paas git:http-serve`` (real gunicorn, two workers) are rate-limited
per client address (issue 12, 8: "200 bad logins in 11 s").

The server of this module blocks an address after 5 failures in a minute, for 2 s (then
4 s...), so the tests can watch a block end. Requests come from 127.0.0.1 and, as a
second client address, 127.0.0.2 (any 127/8 source works on loopback).
"""

from __future__ import annotations

import base64
import http.client
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from procs import free_port, stop, wait_port
from receive_helpers import HttpServer, Instance, Worktree

MAX = 5
BLOCK = 2


@pytest.fixture(scope="module")
def limited(instance: Instance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn-limited") / "gunicorn.log"
    env = dict(instance.env, PAAS_HTTP_GIT_MAX_FAILURES=str(MAX), PAAS_HTTP_GIT_BLOCK=str(BLOCK))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "paas", "git:http-serve", "--workers", "2",
                                 "--bind", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log,
                                start_new_session=True)
    try:
        wait_port(port, proc, "paas git:http-serve")
        yield HttpServer(port=port, log=log_path)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def token(instance: Instance) -> Iterator[str]:
    yield instance.cli("auth:add", "limited").stdout.strip()
    instance.cli("auth:remove", "limited")


def get(server: HttpServer, creds: str | None, source: str = "127.0.0.1",
        xff: str = "") -> tuple[int, str]:
    """One request on a new connection from ``source``: (status, Retry-After)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=(source, 0))
    headers = {"X-Forwarded-For": xff} if xff else {}
    if creds is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    try:
        conn.request("GET", "/web.git/info/refs?service=git-receive-pack", headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After") or ""
    finally:
        conn.close()


def wait_unblocked(server: HttpServer, source: str, token: str) -> None:
    deadline = time.monotonic() + 30
    while get(server, f"limited:{token}", source)[0] == 429:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_brute_force_gets_429_after_the_limit(instance: Instance, limited: HttpServer,
                                                token: str) -> None:
    """The attack of the issue: 200 wrong passwords in a row. Only MAX reach a token check;
    both workers count into one counter, so it is exactly MAX."""
    statuses = [get(limited, f"limited:guess{i}")[0] for i in range(200)]
    assert statuses[:MAX] == [401] * MAX
    assert set(statuses[MAX:]) == {429}
    status, retry = get(limited, f"limited:{token}")
    assert status == 429 and 1 <= int(retry) <= BLOCK  # even the right token waits
    # another address is not affected, and its success does not lift the block
    assert get(limited, f"limited:{token}", source="127.0.0.2")[0] == 200
    assert get(limited, "limited:nope", source="127.0.0.2")[0] == 401
    assert get(limited, f"limited:{token}")[0] == 429
    # an X-Forwarded-For from a client is not believed (no trusted proxy configured)
    assert get(limited, f"limited:{token}", xff="127.0.0.9")[0] == 429
    wait_unblocked(limited, "127.0.0.1", token)
    assert "blocked for" in Path(limited.log).read_text()


def test_each_block_in_a_row_is_twice_as_long(limited: HttpServer) -> None:
    retries = []
    for _ in range(2):
        for i in range(MAX):
            assert get(limited, f"limited:y{i}", source="127.0.0.4")[0] == 401
        status, retry = get(limited, "limited:y", source="127.0.0.4")
        assert status == 429
        retries.append(int(retry))
        time.sleep(int(retry) + 0.3)
    assert retries == [BLOCK, 2 * BLOCK]


def test_requests_without_credentials_do_not_count(limited: HttpServer, token: str) -> None:
    """git's first request of every push carries no credentials: never counted."""
    assert [get(limited, None, source="127.0.0.5")[0] for _ in range(3 * MAX)] == [401] * 3 * MAX
    assert get(limited, f"limited:{token}", source="127.0.0.5")[0] == 200


def test_git_push_with_a_wrong_token_is_told_to_wait(limited: HttpServer, token: str,
                                                     worktree: Callable[..., Worktree]) -> None:
    w = worktree()
    w.commit("one")
    for i in range(MAX):
        w.git("push", limited.url("web", f"limited:bad{i}"), "main", check=False)
    res = w.git("push", limited.url("web", f"limited:{token}"), "main", check=False)
    assert res.returncode != 0 and "429" in res.stderr, res.stderr


def test_the_counters_file_is_root_only(instance: Instance, limited: HttpServer) -> None:
    get(limited, "limited:bad", source="127.0.0.6")
    auth = instance.root / "auth"
    assert auth.stat().st_mode & 0o777 == 0o700
    files = [p for p in auth.iterdir() if p.name.startswith("http-failures.db")]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in files)
