"""Docker's default seccomp profile converted to OCI: allowlist, cap/arch conditions, args."""

from __future__ import annotations

from typing import Any

import pytest

from paas.errors import InvalidArgument
from paas.runtime.seccomp import default_profile, load_docker_profile
from paas.runtime.spec import DEFAULT_CAPS

CLONE_NS_MASK = 2114060288  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def _rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def _unconditionally_allowed(profile: dict[str, Any], name: str) -> bool:
    return any(r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               for r in _rules_for(profile, name))


def test_default_action_is_eperm_and_x86_arches() -> None:
    p = default_profile(DEFAULT_CAPS)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_everyday_syscalls_are_allowed() -> None:
    p = default_profile(DEFAULT_CAPS)
    for name in ("read", "write", "openat", "execve", "futex", "epoll_wait", "exit_group"):
        assert _unconditionally_allowed(p, name), name


@pytest.mark.parametrize("name", ["mount", "umount2", "unshare", "setns", "bpf", "sethostname",
                                  "reboot", "init_module", "kcmp", "open_by_handle_at",
                                  "perf_event_open", "syslog", "clock_settime"])
def test_privileged_syscalls_are_absent_with_default_caps(name: str) -> None:
    p = default_profile(DEFAULT_CAPS)
    assert not _unconditionally_allowed(p, name)
    assert _rules_for(p, name) == []


@pytest.mark.parametrize("name", ["io_uring_setup", "io_uring_enter", "io_uring_register"])
def test_io_uring_is_not_allowed_even_with_every_cap(name: str) -> None:
    """moby#46762: io_uring bypasses seccomp's view of syscalls, so Docker dropped it."""
    from paas.runtime.spec import DEFAULT_CAPS as caps

    every = tuple(caps) + ("CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_PERFMON")
    for capset in (caps, every):
        assert _rules_for(default_profile(capset), name) == []
    assert all(name not in r["names"] for r in load_docker_profile()["syscalls"])


def test_ptrace_allowed_by_kernel_version_rule() -> None:
    # moby allows ptrace on kernels >= 4.8 (seccomp can no longer be bypassed by it)
    assert _unconditionally_allowed(default_profile(DEFAULT_CAPS, kernel=(6, 1)), "ptrace")
    assert not _unconditionally_allowed(default_profile(DEFAULT_CAPS, kernel=(4, 4)), "ptrace")


def test_cap_sys_admin_unlocks_mount_and_plain_clone() -> None:
    p = default_profile(DEFAULT_CAPS + ("CAP_SYS_ADMIN",))
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3"):
        assert _unconditionally_allowed(p, name), name
    # the restricted clone rule and the clone3 ENOSYS rule are excluded with CAP_SYS_ADMIN
    assert all(not r.get("args") for r in _rules_for(p, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in _rules_for(p, "clone3"))


def test_clone_without_sys_admin_masks_namespace_flags() -> None:
    p = default_profile(DEFAULT_CAPS)
    rules = _rules_for(p, "clone")
    assert rules == [{
        "names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": CLONE_NS_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }]


def test_clone3_returns_enosys_without_sys_admin() -> None:
    rules = _rules_for(default_profile(DEFAULT_CAPS), "clone3")
    assert rules == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_socket_excludes_af_vsock() -> None:
    rules = _rules_for(default_profile(DEFAULT_CAPS), "socket")
    assert rules == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]}]


def test_personality_only_for_safe_personas() -> None:
    rules = _rules_for(default_profile(DEFAULT_CAPS), "personality")
    values = sorted(r["args"][0]["value"] for r in rules)
    assert values == [0, 8, 131072, 131080, 4294967295]
    assert all(r["args"][0]["op"] == "SCMP_CMP_EQ" for r in rules)


def test_arch_specific_rules_follow_the_arch() -> None:
    x86 = default_profile(DEFAULT_CAPS, "x86_64")
    assert _unconditionally_allowed(x86, "arch_prctl")
    assert _unconditionally_allowed(x86, "modify_ldt")
    assert not _rules_for(x86, "set_tls")
    assert not _rules_for(x86, "s390_runtime_instr")
    arm = default_profile(DEFAULT_CAPS, "aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert _unconditionally_allowed(arm, "set_tls")
    assert not _rules_for(arm, "arch_prctl")


def test_sys_chroot_in_default_caps_allows_chroot() -> None:
    assert _unconditionally_allowed(default_profile(DEFAULT_CAPS), "chroot")
    caps = tuple(c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT")
    assert not _rules_for(default_profile(caps), "chroot")


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        default_profile(DEFAULT_CAPS, "pdp11")


def test_results_are_independent_copies() -> None:
    a = default_profile(DEFAULT_CAPS)
    a["syscalls"].clear()
    b = default_profile(DEFAULT_CAPS)
    assert b["syscalls"]
    raw = load_docker_profile()
    raw["syscalls"].clear()
    assert load_docker_profile()["syscalls"]


def test_stored_profile_is_docker_format() -> None:
    raw = load_docker_profile()
    assert {"defaultAction", "defaultErrnoRet", "archMap", "syscalls"} <= set(raw)
    names = {n for r in raw["syscalls"] for n in r["names"]}
    assert len(names) > 350
