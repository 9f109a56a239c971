"""Helpers of the e2e tests (servers, app repositories, requests to nginx); the fixtures
that use them are in this directory's conftest.py. A module of its own, not conftest:
test modules import these names, and ``conftest`` is ambiguous on sys.path."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prereq import require
from procs import free_port, sshd_privsep_dir, start_sshd, stop, wait_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
SSHD = "/usr/sbin/sshd"


def processes_mentioning(*needles: str) -> list[str]:
    """Live processes whose command line contains one of ``needles``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                "utf-8", "replace")
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and any(n in cmdline for n in needles):
            found.append(f"{pid}: {cmdline.strip()}")
    return found


def git_env() -> dict[str, str]:
    """A git client environment free of the host's config and of PAAS_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PAAS_"))}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir(),
               GIT_CONFIG_GLOBAL=os.devnull)
    return env


@dataclass
class Response:
    status: int
    body: str


@dataclass
class Platform:
    env: dict[str, str]
    cli: Callable[..., subprocess.CompletedProcess[str]]
    root: Path
    http_port: int  # nginx
    git_http_port: int  # paas git:http-serve
    token: str
    ssh_port: int
    ssh_key: Path

    def http_url(self, app: str) -> str:
        return f"http://pusher:{self.token}@127.0.0.1:{self.git_http_port}/{app}.git"

    def ssh_url(self, app: str) -> str:
        return f"ssh://root@127.0.0.1:{self.ssh_port}/{app}"

    def ssh_git_env(self) -> dict[str, str]:
        env = git_env()
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {self.ssh_key} -p {self.ssh_port} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
        return env

    def get(self, app: str, path: str = "/", host: str | None = None,
            timeout: float = 5) -> Response:
        """One request to the instance's nginx for ``host`` (default ``APP.localhost``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host or f"{app}.localhost"})
            resp = conn.getresponse()
            return Response(resp.status, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def release_versions(self, app: str) -> list[int]:
        rels = json.loads(self.cli("releases", app, "--format", "json").stdout)
        return sorted(int(r["Version"]) for r in rels)

    def container_names(self) -> list[str]:
        """Every container of the instance (``container:ps -a``), running or not."""
        rows = json.loads(self.cli("container:ps", "-a", "--format", "json").stdout)
        return [str(r["Names"]) for r in rows]

    def ps(self, app: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.cli("ps", app, "--format", "json").stdout)
        return rows


class AppRepo:
    """A git repository of an app (a copy of ``apps/NAME``) to commit in and push from."""

    def __init__(self, path: Path, template: str | None, env: dict[str, str] | None = None,
                 ) -> None:
        self.path = path
        self.env = env or git_env()
        if template is not None:
            shutil.copytree(APPS / template, path)
            self.git("init", "-q", "-b", "main")
            self.commit("initial")

    def copy(self, path: Path) -> AppRepo:
        """A second working copy with the same history (another developer's clone)."""
        shutil.copytree(self.path, path)
        return AppRepo(path, None, self.env)

    def git(self, *args: str, check: bool = True, timeout: float = 180,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                             cwd=self.path, env=env or self.env, capture_output=True, text=True,
                             timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {res.returncode}:\n"
                                 f"{res.stdout}{res.stderr}")
        return res

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text)

    def remove(self, name: str) -> None:
        (self.path / name).unlink()

    def commit(self, message: str, **files: str) -> str:
        for name, text in files.items():
            self.write(name, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def push(self, url: str, refspec: str = "main", *, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
        """``git push URL REFSPEC`` (not checked: the caller asserts on the result)."""
        return self.git("push", url, refspec, check=False, env=env)




def repo_ref(root: Path, app: str, ref: str) -> str | None:
    """The sha ``ref`` points at in the app's bare repository on the server."""
    res = subprocess.run(["git", "--git-dir", str(root / "repos" / f"{app}.git"), "rev-parse",
                          "--verify", "-q", ref], capture_output=True, text=True, check=False)
    return res.stdout.strip() or None


class BackgroundPush:
    """``git push`` running in the background; its stderr lines kept with arrival times."""

    def __init__(self, repo: AppRepo, url: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            ["git", "push", url, "main"], cwd=repo.path, env=env or repo.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))

    @property
    def output(self) -> str:
        return "".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"push never said {text!r}:\n{self.output}")
            time.sleep(0.05)

    def wait(self, timeout: float = 120) -> tuple[int, float]:
        """(exit code, time of the last output line)."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code, self.lines[-1][0] if self.lines else time.monotonic()
@contextlib.contextmanager
def start_platform(instance_tools: Any, rootfs_tar: Path, stack_tar: Path, logs: Path,
                   root_dir: Path | None = None) -> Iterator[Platform]:
    """The whole stack of ``platform`` (``root_dir``: the instance's root, e.g. a small
    filesystem's mount point)."""
    require("git", "nginx", "runc", SSHD, "ssh", "ssh-keygen", root=True)
    paas_instance, cli_for = instance_tools
    http_port = free_port()
    started: list[subprocess.Popen[Any]] = []
    privsep = contextlib.ExitStack()
    root = ""
    with paas_instance(root_dir) as env:
        root = env["PAAS_ROOT"]
        env.update(PAAS_HTTP_PORT=str(http_port), PAAS_HTTP_ADDR="127.0.0.1",
                   PAAS_DRAIN_SECONDS="0.5")
        cli = cli_for(env)
        try:
            cli("image:import", str(rootfs_tar), "debian:bookworm", timeout=300)
            cli("image:import", str(stack_tar), "paas/stack:bookworm", timeout=300)
            cli("daemon:start")
            token = cli("auth:add", "pusher").stdout.strip()

            git_http_port = free_port()
            with open(logs / "gunicorn.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "paas", "git:http-serve", "--bind",
                     f"127.0.0.1:{git_http_port}"], env=env, stdout=log, stderr=log,
                    start_new_session=True)
            started.append(proc)
            wait_port(git_http_port, proc, "paas git:http-serve")

            privsep.enter_context(sshd_privsep_dir())
            keydir = logs / "ssh"
            keydir.mkdir()
            for name in ("host_key", "id_e2e"):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e",
                                "-f", str(keydir / name)], check=True)
            cli("ssh-keys:add", "e2e", str(keydir / "id_e2e.pub"))
            ssh_port = free_port()
            started.append(start_sshd(SSHD, keydir, ssh_port, keydir / "host_key",
                                      Path(root) / "ssh" / "authorized_keys"))
            # ssh-keys:list and report ask this sshd which file it reads for root
            env.update(PAAS_SSHD_CONFIG=str(keydir / "sshd_config"), PAAS_SSH_USER="root")

            yield Platform(env=env, cli=cli, root=Path(root), http_port=http_port,
                           git_http_port=git_http_port, token=token, ssh_port=ssh_port,
                           ssh_key=keydir / "id_e2e")
        finally:
            for proc in reversed(started):
                stop(proc)
            privsep.close()
    # the instance is uninstalled: nothing of it may still run (nginx included)
    left = processes_mentioning(root, f"127.0.0.1:{http_port}") if root else []
    assert not left, "processes of the instance survived its teardown:\n  " + "\n  ".join(left)


