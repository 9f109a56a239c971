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

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    HERE,
    AppRepo,
    Platform,
    start_platform,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def platform(instance_tools: Any, rootfs_tar: Path, stack_tar: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with start_platform(instance_tools, rootfs_tar, stack_tar,
                        tmp_path_factory.mktemp("e2e-servers")) as p:
        yield p


@pytest.fixture
def app_repo(tmp_path: Path) -> Callable[..., AppRepo]:
    """``app_repo(template="hello", name=None, env=None)``: a fresh repo of a sample app."""
    n = iter(range(100))

    def make(template: str = "hello", env: dict[str, str] | None = None) -> AppRepo:
        return AppRepo(tmp_path / f"{template}-{next(n)}", template, env)

    return make
