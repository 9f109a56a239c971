"""Integration tests drive the real host: root, runc, overlayfs, cgroups.

Every test under this directory gets the ``integration`` marker (so
``pytest -m 'not integration'`` runs only the fast tiers) and is skipped when the
host cannot run it. In CI the top-level conftest turns those skips into failures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prereq import unavailable

_HERE = Path(__file__).parent
_TOOLS = ("runc", "mmdebstrap", "umount", "nft")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (try: sudo ./test.sh)"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (run: sudo ./install.sh)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs (modprobe overlay)"
    return None


# modules whose instances start nginx or git over HTTP: they run with the host's ports 80,
# 443 and 8022 taken, as when paas is installed and serving (issue 12, 9)
_WITH_HOST_PORTS_TAKEN = {"test_apps_cli.py", "test_hygiene_cli.py", "test_ops_cli.py",
                          "test_proxy_nginx.py", "test_host_ports.py"}


@pytest.fixture(scope="module", autouse=True)
def _host_ports(request: pytest.FixtureRequest) -> None:
    if request.path.name in _WITH_HOST_PORTS_TAKEN:
        request.getfixturevalue("host_ports_taken")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _HERE in item.path.parents:
        reason = _missing_prerequisite()
        if reason:
            unavailable(reason)


class Engine:
    """One instance shared by a test module: call it like the ``cli`` fixture."""

    def __init__(self, env: dict[str, str],
                 cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
        self.env, self.cli = env, cli
        self.root = Path(env["PAAS_ROOT"])
        self.instance = env["PAAS_INSTANCE"]

    def __call__(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.cli(*args, **kw)

    def inspect(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self("container:inspect", ref).stdout)[0]
        return result

    def worker_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "paasd.pid").read_text())
        except (OSError, ValueError):
            return None

    def keeper_pid(self) -> int:
        return int((self.root / "run" / "keeper.pid").read_text())

    def wait_new_worker(self, old: int | None, timeout: float = 5.0) -> int:
        """The pid of a worker other than ``old`` that answers /_ping."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self("daemon:status", "--format", "json", check=False)
            if st.returncode == 0:
                pid = int(json.loads(st.stdout)["pid"])
                if pid != old:
                    return pid
            time.sleep(0.05)
        raise AssertionError(f"no new paasd worker within {timeout}s (old {old})")

    def wait_state(self, ref: str, pred: Callable[[dict[str, Any]], bool],
                   timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect(ref)
            if pred(info) or time.monotonic() > deadline:
                return info
            time.sleep(0.05)


@pytest.fixture(scope="session")
def engine_class() -> type[Engine]:
    """``Engine``, for a module that makes its own instance (other settings): test
    modules cannot import it from here (``conftest`` is ambiguous with tests/e2e's)."""
    return Engine


@pytest.fixture(scope="module")
def engine(instance_tools: Any, rootfs_tar: Path) -> Iterator[Engine]:
    """A module's instance: debian:bookworm imported once, paasd running."""
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        cli = cli_for(env)
        cli("image:import", str(rootfs_tar), "debian:bookworm")
        cli("daemon:start")
        yield Engine(env, cli)
