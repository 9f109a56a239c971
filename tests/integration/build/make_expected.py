#!/usr/bin/env python3
"""Regenerate ``expected/<case>.json`` from Docker's classic builder, the reference.

Starts a PRIVATE dockerd (own data root, exec root, socket, config file, cgroup parent;
no bridge, no iptables, no NAT, no userland proxy: RUN steps use ``--network=none``),
imports the same Debian rootfs tar the tests import as ``debian:bookworm`` (with the
config ``paas image:import`` gives it: the default PATH and ``CMD ["bash"]``), builds
every corpus case with docker.io's own client (``/usr/bin/docker``, ``DOCKER_BUILDKIT=0``:
the classic builder), saves each image, flattens it and writes the diff against the
base image plus the compared config fields. Everything it started (dockerd, its
containerd, mounts, cgroups, the temp dir) is removed at the end, also on failure.

Usage (as root, from the repo)::

    .venv/bin/python tests/integration/build/make_expected.py [CASE...]

Not here: building with paas or comparing (``test_conformance.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from casedefs import EXPECTED, Case, cases, prepare_context, tag_for
from imagetrees import IGNORED, Tree, config_fields, diff_trees, read_archive

REPO = Path(__file__).resolve().parents[3]
ROOTFS = REPO / ".cache" / "bookworm-minbase.tar"
DOCKER = "/usr/bin/docker"  # docker.io's client, matching its dockerd (not /usr/local/bin)
DOCKERD = "/usr/sbin/dockerd"
BASE_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(argv: list[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}{res.stderr}")
    return res


class PrivateDocker:
    """A dockerd of our own, never the system one (after bench/container_start)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.socket = f"unix://{tmp}/docker.sock"
        self.cgroup = "paas-conformance-docker-" + secrets.token_hex(3)
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env.update(DOCKER_BUILDKIT="0", DOCKER_CONFIG=str(tmp / "client"),
                        DOCKER_HOST=self.socket)

    def start(self) -> None:
        (self.tmp / "client").mkdir()
        (self.tmp / "daemon.json").write_text("{}\n")
        argv = [
            DOCKERD,
            "--config-file", f"{self.tmp}/daemon.json",  # not /etc/docker/daemon.json
            "--data-root", f"{self.tmp}/docker",
            "--exec-root", f"{self.tmp}/exec",
            "--pidfile", f"{self.tmp}/docker.pid",
            "-H", self.socket,
            "--bridge=none",  # builds run with --network=none
            "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--ip-forward=false", "--userland-proxy=false",
            "--cgroup-parent", f"/{self.cgroup}",
        ]  # fmt: skip
        with open(self.tmp / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}:\n"
                                   + (self.tmp / "dockerd.log").read_text()[-3000:])
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within 60s, see {self.tmp}/dockerd.log")

    def docker(self, *args: str, check: bool = True, timeout: float = 600
               ) -> subprocess.CompletedProcess[str]:
        return run([DOCKER, *args], check=check, env=self.env, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # its containerd and shims normally exit with it; any left naming our dirs go
        for pid in _pids_mentioning(str(self.tmp)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _unmount_under(self.tmp)
        for top in ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in _v1_controllers())):
            cg = Path(top, self.cgroup)
            if cg.is_dir():
                for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    d.rmdir()
                cg.rmdir()


def _pids_mentioning(text: str) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    out.append(int(proc.name))
            except OSError:
                pass
    return out


def _v1_controllers() -> list[str]:
    try:
        return [p.name for p in Path("/sys/fs/cgroup").iterdir() if (p / "tasks").exists()]
    except OSError:
        return []


def _unmount_under(root: Path) -> None:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(str(root) + "/"):
                points.append(point)
    for point in sorted(points, key=lambda p: -p.count("/")):
        run(["umount", "-l", point], check=False)


def expected_for(case: Case, trees: dict[str, Tree], save: Any, build: Any) -> dict[str, Any]:
    """Build every target of ``case`` and return its expected record."""
    base = trees[case.base]
    images: dict[str, Any] = {}
    for target in case.targets:
        tree, config = read_archive(save(build(case, target)))
        images[target] = {"config": config_fields(config), "diff": diff_trees(base, tree)}
    return {"case": case.name, "base": case.base, "images": images}


def write_expected(case: Case, record: dict[str, Any]) -> Path:
    EXPECTED.mkdir(exist_ok=True)
    path = EXPECTED / f"{case.name}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="only these cases (default: all)")
    a = ap.parse_args()
    todo = [c for c in cases() if not a.cases or c.name in a.cases]
    if os.geteuid() != 0 or not os.access(DOCKERD, os.X_OK) or not os.access(DOCKER, os.X_OK):
        print("needs root and docker.io (/usr/sbin/dockerd, /usr/bin/docker)", file=sys.stderr)
        return 2
    if not ROOTFS.exists():
        print(f"{ROOTFS} is missing: run the integration tests once (rootfs_tar)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="pconf-"))
    dockerd = PrivateDocker(tmp)
    failed = []
    try:
        dockerd.start()
        print(dockerd.docker("version", "--format", "{{.Server.Version}}").stdout.strip())
        # the config paas's image:import gives a rootfs with bash, so both bases are equal
        dockerd.docker("import", "--change", f"ENV {BASE_ENV}", "--change", 'CMD ["bash"]',
                       str(ROOTFS), "debian:bookworm")

        def save(ref: str) -> Path:
            out = tmp / (ref.replace(":", "_").replace("/", "_") + ".tar")
            dockerd.docker("save", ref, "-o", str(out))
            return out

        def build(case: Case, target: str) -> str:
            ctx = prepare_context(case, tmp / "ctx" / f"{case.name}-{target}")
            tag = tag_for(case, target)
            res = dockerd.docker("build", "--network=none", "-t", tag, *case.build_flags(target),
                                 str(ctx), check=False)
            log = tmp / "logs" / f"{case.name}-{target or 'latest'}.log"
            log.parent.mkdir(exist_ok=True)
            log.write_text(res.stdout + res.stderr)
            if res.returncode != 0:
                raise RuntimeError(f"docker build {case.name} {target}:\n{res.stdout}{res.stderr}")
            return tag

        base_tree, _ = read_archive(save("debian:bookworm"))
        trees: dict[str, Tree] = {"debian:bookworm": base_tree,
                                  "scratch": {"/": {"type": "dir", "mode": 0o755, "uid": 0,
                                                    "gid": 0}}}
        for case in todo:
            try:
                path = write_expected(case, expected_for(case, trees, save, build))
                print(f"{case.name}: {path.relative_to(REPO)}")
            except RuntimeError as err:
                failed.append(case.name)
                print(f"{case.name}: FAILED {err}", file=sys.stderr)
        if os.environ.get("KEEP_LOGS"):
            shutil.copytree(tmp / "logs", os.environ["KEEP_LOGS"], dirs_exist_ok=True)
    finally:
        dockerd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ignored paths: {', '.join(IGNORED) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
