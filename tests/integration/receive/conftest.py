"""Fixtures for pushes with the real git client: a paas instance whose update hook is
``receive_hook:hook``, a real sshd on 127.0.0.1 (its own config, host key and pid
file in a temp dir, AuthorizedKeysFile = the instance's file) and gunicorn serving
the smart HTTP app. Both servers are killed in teardown.

In CI a missing git, sshd or ssh-keygen is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prereq import require
from procs import free_port, sshd_privsep_dir, start_sshd, stop, wait_port
from receive_helpers import (
    HERE,
    SSHD,
    HttpServer,
    Instance,
    Sshd,
    Worktree,
    git_env,
)


@pytest.fixture(scope="module")
def instance(instance_tools: Any) -> Iterator[Instance]:
    require("git")
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
        env["PAAS_RECEIVE_HOOK"] = "receive_hook:hook"
        yield Instance(env, cli_for(env), Path(env["PAAS_ROOT"]))


@pytest.fixture(scope="module")
def sshd(instance: Instance) -> Iterator[Sshd]:
    require(SSHD, "ssh", "ssh-keygen")
    privsep = contextlib.ExitStack()
    work = Path(tempfile.mkdtemp(prefix="paas-sshd-"))
    proc = None
    try:
        privsep.enter_context(sshd_privsep_dir())
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(work / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester",
                        "-f", str(work / "id_test")], check=True)
        port = free_port()
        keys = instance.root / "ssh" / "authorized_keys"
        proc = start_sshd(SSHD, work, port, work / "host_key", keys)
        # ssh-keys:list and report ask this sshd which file it reads for root
        instance.env.update(PAAS_SSHD_CONFIG=str(work / "sshd_config"), PAAS_SSH_USER="root")
        yield Sshd(port=port, key=work / "id_test", workdir=work)
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
        privsep.close()


@pytest.fixture(scope="module")
def http_server(instance: Instance, tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[HttpServer]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "paas", "git:http-serve", "--bind",
                                 f"127.0.0.1:{port}"], env=instance.env, stdout=log,
                                stderr=log, start_new_session=True)
    try:
        wait_port(port, proc, "paas git:http-serve")
        yield HttpServer(port=port, log=log_path)
    finally:
        stop(proc)


@pytest.fixture
def worktree(tmp_path: Path) -> Callable[[dict[str, str] | None], Worktree]:
    n = iter(range(100))

    def make(env: dict[str, str] | None = None) -> Worktree:
        return Worktree(tmp_path / f"w{next(n)}", env or git_env())

    return make
