"""Helpers of the receive integration tests (servers, worktrees); the fixtures that
use them are in this directory's conftest.py. A module of its own, not conftest: test
modules import these names, and ``conftest`` is ambiguous on sys.path."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SSHD = "/usr/sbin/sshd"


@dataclass
class Instance:
    env: dict[str, str]
    cli: Callable[..., subprocess.CompletedProcess[str]]
    root: Path

    def repo_ref(self, app: str, ref: str) -> str | None:
        res = subprocess.run(["git", "--git-dir", str(self.root / "repos" / f"{app}.git"),
                              "rev-parse", "--verify", "-q", ref],
                             capture_output=True, text=True, check=False)
        return res.stdout.strip() or None


@dataclass
class Sshd:
    port: int
    key: Path  # private key of the pusher
    workdir: Path

    def git_env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {self.key} -p {self.port} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
        return env


@dataclass
class HttpServer:
    port: int
    log: Path

    def url(self, app: str, creds: str = "") -> str:
        return f"http://{creds + '@' if creds else ''}127.0.0.1:{self.port}/{app}.git"


class Worktree:
    """A local clone to commit in and push from."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "t@example.com")
        self.git("config", "user.name", "Tester")

    def git(self, *args: str, check: bool = True, timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True,
                             text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
        return res

    def commit(self, message: str) -> str:
        (self.path / "file.txt").write_text(f"{message} {time.monotonic()}\n")
        self.git("add", "file.txt")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push_streaming(self, url: str, refspec: str, on_line: Callable[[str], None],
                       ) -> tuple[int, str]:
        """git push, calling ``on_line`` for each stderr line as it arrives."""
        proc = subprocess.Popen(["git", "push", url, refspec], cwd=self.path, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            on_line(line)
        return proc.wait(60), "".join(lines)


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PAAS_"))}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir())
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    return env
