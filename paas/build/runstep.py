"""A RUN step: the command in a build container of the current image, its output
streamed as it comes, its exit code, and the container's upper dir for the layer.

The container is an ordinary paas container (user namespace, seccomp, the bridge
network so apt/pip reach their mirrors), run by ``runc run`` in the foreground
with the output on a pipe; it is removed when the step ends, also on failure or
Ctrl-C. Build containers get a low CPU weight (``BUILD_CPU_SHARES``, a quarter of
the default 1024): on a small host the apps serving during a deploy come first; and a
writable layer of the instance's build size (``PAAS_BUILD_DISK_LIMIT``, default 10g):
a step that fills it fails with ENOSPC inside and one line saying so, the host keeps
its free space; and the host's CA bundle (``paas.build.hostca``).

Not here: caching and layers (``paas.build.builder``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from .. import proc
from ..errors import CommandFailed
from ..model import Container, RunOptions
from ..runtime.bundle import Bundle
from ..runtime.lifecycle import Runtime
from . import hostca

__all__ = ["BUILD_CPU_SHARES", "BuildContainer", "build_container", "check_exit"]

BUILD_CPU_SHARES = 256


class BuildContainer:
    def __init__(self, rt: Runtime, c: Container, *, ca: bool = False) -> None:
        self.rt = rt
        self.container = c
        bundle = Bundle(rt.ctx, c.id)
        self.bundle = bundle
        self.upper = bundle.upper  # readable until the container is removed
        self.rootfs = bundle.rootfs  # mounted from creation until run() returns
        self.finished = False
        # the CA bundle's mount point runc makes in the layer (not the image's)
        self._stubs = hostca.Stubs(self.rootfs) if ca else None

    def run(self, on_output: Callable[[bytes], None]) -> int:
        """Run the command; its stdout and stderr go to ``on_output``. Returns its exit
        code once the container is gone and its root unmounted (``upper`` is complete)."""
        bundle = self.rt.prepare(self.container)
        argv = self.rt.runc.run(self.container.id, bundle.dir)
        r, w = os.pipe()
        try:
            child = proc.spawn(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=w)
        finally:
            os.close(w)
        try:
            with os.fdopen(r, "rb", buffering=0) as out:
                while chunk := out.read(65536):
                    on_output(chunk)
            code = child.wait()
        except BaseException:  # Ctrl-C or a failing callback: stop the container first
            proc.run(self.rt.runc.kill(self.container.id, "KILL", all_processes=True), check=False)
            child.wait()
            raise
        self.finish(code)
        self.check_space(code)
        return code

    def finish(self, code: int) -> None:
        if not self.finished:
            self.finished = True
            self.rt.finish(self.container.id, code, keep_layer=True)
            if self._stubs is not None:
                self._stubs.drop(self.upper)

    def check_space(self, code: int) -> None:
        """A failed step whose writable layer is full: say so, in one line."""
        from ..runtime.disk import is_full

        if code != 0 and is_full(self.bundle.layer):
            size = self.container.config.resources.disk or 0
            raise CommandFailed(
                f"the step ran out of space: its writable layer is full ({size >> 20} MiB)",
                "write less in one step, or raise PAAS_BUILD_DISK_LIMIT (e.g. 20g) for paasd",
                returncode=code)


@contextmanager
def build_container(rt: Runtime, opts: RunOptions) -> Iterator[BuildContainer]:
    """A created build container (``opts.image``'s USER, WORKDIR and ENV unless ``opts``
    says otherwise), removed at the end of the block (take its ``upper`` dir before that)."""
    if opts.resources.cpu_shares is None:  # apps serving meanwhile come first
        opts = replace(opts, resources=replace(opts.resources, cpu_shares=BUILD_CPU_SHARES))
    if opts.resources.disk is None and rt.ctx.limits.build_disk is not None:
        opts = replace(opts, resources=replace(opts.resources, disk=rt.ctx.limits.build_disk))
    bundle = hostca.parse_bundle_setting(rt.ctx.build_ca)
    if bundle is not None:  # TLS through an inspecting proxy: trust what the host trusts
        own = rt.images.get(opts.image).config.env  # an image's ENV of them wins too
        opts = replace(opts, binds=(*opts.binds, hostca.ca_bind(bundle)),
                       env=hostca.ca_env(opts.env, own))
    bc = BuildContainer(rt, rt.create(opts), ca=bundle is not None)
    try:
        yield bc
    finally:
        try:
            bc.finish(-1)
        finally:
            rt.remove(rt.store.get(bc.container.id), force=True)


def check_exit(code: int, command: str) -> None:
    if code != 0:
        raise CommandFailed(
            f"the command '{command}' returned a non-zero code: {code}",
            "see its output above; nothing was tagged",
            returncode=code,
        )
