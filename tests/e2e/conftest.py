"""End-to-end fixtures: one paas instance per module, reached the way users reach it.

``platform`` is the whole stack: a fresh instance with debian:bookworm and the
buildpack stack image imported, paasd started with the instance's own nginx on a
free loopback port (``PAAS_HTTP_PORT``), smart HTTP served by ``paas git:http-serve``
(gunicorn) with a token from ``auth:add``, and a real Debian sshd on a free port whose
AuthorizedKeysFile is the instance's (a key added with ``ssh-keys:add``). Apps are
git repositories made in ``tmp_path`` from ``apps/`` and pushed with the real git
client; requests go to nginx with a ``Host: APP.localhost`` header.

Teardown stops gunicorn and sshd (their process groups), then the instance fixture
runs ``system:uninstall`` and checks the host for leftovers; on top of that, this
module checks that no process of the instance (nginx, gunicorn, sshd, containers)
survives. In CI a missing git/sshd/ssh-keygen is a failure, not a skip.

Not here: the git protocol's refusals (tests/integration/receive) and nginx config
details (tests/integration/proxy).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    HERE,
    SSHD,
    AppRepo,
    Platform,
    processes_mentioning,
)
from prereq import require
from procs import free_port, sshd_privsep_dir, stop, wait_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def platform(instance_tools: Any, rootfs_tar: Path, stack_tar: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    require("git", "nginx", "runc", SSHD, "ssh", "ssh-keygen", root=True)
    paas_instance, cli_for = instance_tools
    http_port = free_port()
    logs = tmp_path_factory.mktemp("e2e-servers")
    started: list[subprocess.Popen[Any]] = []
    privsep = contextlib.ExitStack()
    root = ""
    with paas_instance() as env:
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
            (keydir / "sshd_config").write_text(
                f"Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {keydir / 'host_key'}\n"
                f"PidFile {keydir / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {Path(root) / 'ssh' / 'authorized_keys'}\n"
                "PermitRootLogin forced-commands-only\nPubkeyAuthentication yes\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                "StrictModes no\nPrintMotd no\nLogLevel VERBOSE\n")
            with open(logs / "sshd.log", "wb") as log:
                proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(keydir / "sshd_config")],
                                        stdout=log, stderr=log, start_new_session=True)
            started.append(proc)
            wait_port(ssh_port, proc, "sshd")

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


@pytest.fixture
def app_repo(tmp_path: Path) -> Callable[..., AppRepo]:
    """``app_repo(template="hello", name=None, env=None)``: a fresh repo of a sample app."""
    n = iter(range(100))

    def make(template: str = "hello", env: dict[str, str] | None = None) -> AppRepo:
        return AppRepo(tmp_path / f"{template}-{next(n)}", template, env)

    return make
