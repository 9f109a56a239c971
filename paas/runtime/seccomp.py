"""Docker's default seccomp profile, converted to the OCI ``linux.seccomp`` object.

Covers: loading ``seccomp_default.json`` (Docker's profile format, rules taken
from moby's ``profiles/seccomp/default.json``, Apache-2.0) once per process,
and converting it for a capability set, architecture and kernel version the
way moby's ``profiles/seccomp`` does: a rule is kept when all its
``includes`` hold (every cap present, arch listed, kernel new enough) and none
of its ``excludes`` hold (any listed cap present, arch listed).

Not covered: custom profiles (``--security-opt seccomp=...``), the
``unconfined`` mode, and loading the filter (runc does that with libseccomp;
names unknown to libseccomp are skipped by runc).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..errors import InvalidArgument

__all__ = ["GO_ARCH", "default_profile", "load_docker_profile"]

# ``uname -m`` / Python platform names -> the Go GOARCH names Docker's
# ``includes.arches`` use, and the libseccomp name of the native arch.
GO_ARCH: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "amd64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}

_PROFILE_FILE = "seccomp_default.json"


@lru_cache(maxsize=1)
def _docker_profile_text() -> str:
    # a plain open: importlib.resources costs ~6 ms of imports on every container start
    with open(os.path.join(os.path.dirname(__file__), _PROFILE_FILE), encoding="utf-8") as f:
        return f.read()


@lru_cache(maxsize=1)
def _docker_profile() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_docker_profile_text())
    return data


def load_docker_profile() -> dict[str, Any]:
    """A private copy of Docker's profile as stored (Docker format)."""
    return copy.deepcopy(_docker_profile())


def _parse_kernel(value: str) -> tuple[int, int]:
    major, _, minor = value.partition(".")
    return int(major), int(minor or 0)


def _included(rule: dict[str, Any], caps: frozenset[str], go_arch: str,
              kernel: tuple[int, int]) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if inc.get("minKernel") and kernel < _parse_kernel(inc["minKernel"]):
        return False
    excluded_by_cap = any(c in caps for c in exc.get("caps") or ())
    return not excluded_by_cap and go_arch not in (exc.get("arches") or ())


def _oci_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
    if rule.get("args"):
        out["args"] = [
            {"index": a["index"], "value": a["value"], "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
            for a in rule["args"]
        ]
    if "errnoRet" in rule:
        out["errnoRet"] = rule["errnoRet"]
    return out


def _architectures(profile: dict[str, Any], native: str) -> list[str]:
    for entry in profile["archMap"]:
        if entry["architecture"] == native:
            return [native] + list(entry.get("subArchitectures") or ())
    return [native]


@lru_cache(maxsize=32)
def _convert(caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> str:
    if arch not in GO_ARCH:
        raise InvalidArgument(
            f"no seccomp profile for architecture {arch!r}",
            f"use one of: {', '.join(sorted(GO_ARCH))}",
        )
    go_arch, native = GO_ARCH[arch]
    profile = _docker_profile()
    out: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": _architectures(profile, native),
        "syscalls": [_oci_rule(r) for r in profile["syscalls"]
                     if _included(r, caps, go_arch, kernel)],
    }
    # Cached as JSON text so every caller gets a fresh, mutable copy cheaply.
    return json.dumps(out)


def default_profile(caps: Sequence[str], arch: str = "x86_64",
                    kernel: tuple[int, int] = (6, 0)) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a container with bounding set ``caps``.

    ``kernel`` is the host kernel (major, minor); it only matters for rules
    with a ``minKernel`` (ptrace needs 4.8).
    """
    result: dict[str, Any] = json.loads(_convert(frozenset(caps), arch, kernel))
    return result
