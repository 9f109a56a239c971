"""The OCI config.json builder: namespaces, mappings, mounts, resources, caps, seccomp."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from paas.errors import InvalidArgument
from paas.model import BindMount, ContainerConfig, IdMap, Resources
from paas.runtime.spec import DEFAULT_CAPS, DEFAULT_PATH, MASKED_PATHS, build_spec, parse_user

IDMAP = IdMap(container_id=0, host_id=100000, size=65536)


def _cfg(**kw: Any) -> ContainerConfig:
    base = ContainerConfig(image="debian:bookworm", image_id="sha256:" + "a" * 64,
                           args=("sh", "-c", "true"))
    return dataclasses.replace(base, **kw)


def _spec(cfg: ContainerConfig | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"rootfs": "/r/rootfs", "cgroups_path": "/paas-x/abc",
                            "idmap": IDMAP, "hostname": "abc123"}
    args.update(kw)
    return build_spec(cfg or _cfg(), **args)


def _ns(spec: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {n["type"]: n for n in spec["linux"]["namespaces"]}


def _mount(spec: dict[str, Any], dest: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [m for m in spec["mounts"] if m["destination"] == dest]
    assert len(found) == 1, dest
    return found[0]


def test_top_level_shape() -> None:
    s = _spec()
    assert s["ociVersion"] == "1.0.2"
    assert s["root"] == {"path": "/r/rootfs", "readonly": False}
    assert s["hostname"] == "abc123"
    assert s["linux"]["cgroupsPath"] == "/paas-x/abc"


def test_process_defaults() -> None:
    p = _spec(_cfg(working_dir="/srv", tty=True))["process"]
    assert p["args"] == ["sh", "-c", "true"]
    assert p["cwd"] == "/srv"
    assert p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["noNewPrivileges"] is True
    assert p["oomScoreAdj"] == 500  # containers go before the platform (paas.oom)
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 1024}]
    assert p["env"] == [f"PATH={DEFAULT_PATH}", "HOSTNAME=abc123", "TERM=xterm"]


def test_env_user_values_win_in_place() -> None:
    env = _spec(_cfg(env=("PATH=/x", "A=1", "HOSTNAME=mine")))["process"]["env"]
    assert env == ["PATH=/x", "HOSTNAME=mine", "A=1"]


def test_root_gets_default_caps_everywhere_but_inheritable() -> None:
    caps = _spec()["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for key in caps:
        assert caps[key] == list(DEFAULT_CAPS)
    assert len(DEFAULT_CAPS) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPS and "CAP_NET_ADMIN" not in DEFAULT_CAPS


def test_non_root_gets_bounding_only_and_groups() -> None:
    p = _spec(_cfg(user="1000:1000:4,50"))["process"]
    assert p["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [4, 50]}
    assert p["capabilities"] == {"bounding": list(DEFAULT_CAPS)}


@pytest.mark.parametrize("user", ["app", "1000", "1:2:x", "-1:0", "1:2:3:4"])
def test_non_numeric_user_is_rejected(user: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_user(user)


def test_parse_user_empty_is_root() -> None:
    assert parse_user("") == (0, 0, ())


def test_empty_args_rejected() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        _spec(_cfg(args=()))


def test_namespaces_network_none_with_userns() -> None:
    s = _spec(_cfg(network="none"))
    assert set(_ns(s)) == {"pid", "ipc", "uts", "mount", "network", "user"}
    assert "path" not in _ns(s)["network"]
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert s["linux"]["uidMappings"] == mapping
    assert s["linux"]["gidMappings"] == mapping


def test_namespaces_netns_path() -> None:
    s = _spec(netns_path="/run/netns/paas-abc")
    assert _ns(s)["network"] == {"type": "network", "path": "/run/netns/paas-abc"}


def test_host_network_has_no_network_namespace() -> None:
    assert "network" not in _ns(_spec(_cfg(network="host")))


def test_host_network_with_netns_path_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        _spec(_cfg(network="host"), netns_path="/run/netns/x")


def test_no_userns_has_no_user_namespace_or_mappings() -> None:
    s = _spec(idmap=None)
    assert "user" not in _ns(s)
    assert "uidMappings" not in s["linux"] and "gidMappings" not in s["linux"]


def test_default_mounts() -> None:
    s = _spec()
    dests = [m["destination"] for m in s["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                     "/dev/shm"]
    assert _mount(s, "/proc")["type"] == "proc"
    assert {"mode=755", "size=65536k"} <= set(_mount(s, "/dev")["options"])
    assert {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} <= set(
        _mount(s, "/dev/pts")["options"])
    assert "size=65536k" in _mount(s, "/dev/shm")["options"]
    assert _mount(s, "/dev/mqueue")["type"] == "mqueue"
    assert _mount(s, "/sys")["type"] == "sysfs"
    assert {"ro", "nosuid", "noexec", "nodev"} <= set(_mount(s, "/sys")["options"])
    assert _mount(s, "/sys/fs/cgroup")["type"] == "cgroup"
    assert "ro" in _mount(s, "/sys/fs/cgroup")["options"]


@pytest.mark.parametrize("kw,cfg_kw,bound", [
    ({}, {"network": "host"}, True),                       # userns + host netns
    ({"netns_path": "/run/netns/x"}, {}, True),            # userns + netns it does not own
    ({"idmap": None}, {"network": "host"}, False),         # no userns: sysfs mounts fine
    ({}, {"network": "none"}, False),                      # userns owns its fresh netns
])
def test_sys_is_bound_when_userns_does_not_own_netns(kw: dict[str, Any], cfg_kw: dict[str, Any],
                                                     bound: bool) -> None:
    sys_mount = _mount(_spec(_cfg(**cfg_kw), **kw), "/sys")
    if bound:
        assert sys_mount["type"] == "bind" and sys_mount["source"] == "/sys"
        assert {"rbind", "ro", "rro"} <= set(sys_mount["options"])
    else:
        assert sys_mount["type"] == "sysfs"


def test_binds_follow_defaults_with_ro_flags() -> None:
    cfg = _cfg(binds=(BindMount("/srv/data", "/data"), BindMount("/etc/cfg", "/cfg", True)))
    s = _spec(cfg, extra_mounts=({"destination": "/etc/hosts", "type": "bind",
                                  "source": "/r/hosts", "options": ["rbind", "ro"]},))
    assert [m["destination"] for m in s["mounts"][-3:]] == ["/data", "/cfg", "/etc/hosts"]
    data, cfgm = _mount(s, "/data"), _mount(s, "/cfg")
    assert data["source"] == "/srv/data" and data["type"] == "bind"
    assert data["options"] == ["rbind", "rprivate", "rw"]
    assert "ro" in cfgm["options"] and "rro" in cfgm["options"] and "rw" not in cfgm["options"]


@pytest.mark.parametrize("bind", [BindMount("rel", "/x"), BindMount("/x", "rel"),
                                  BindMount("/x", "/")])
def test_bad_binds_rejected(bind: BindMount) -> None:
    with pytest.raises(InvalidArgument):
        _spec(_cfg(binds=(bind,)))


def test_masked_and_readonly_paths() -> None:
    linux = _spec()["linux"]
    for path in ("/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                 "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                 "/sys/firmware", "/sys/devices/virtual/powercap"):
        assert path in linux["maskedPaths"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"]


def test_device_rules_deny_first_then_allowlist() -> None:
    devices = _spec()["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    allowed = {(d.get("type"), d.get("major"), d.get("minor"), d["access"])
               for d in devices if d["allow"]}
    for major, minor in ((1, 3), (1, 5), (1, 8), (1, 9), (5, 0), (5, 1)):
        assert ("c", major, minor, "rwm") in allowed
    assert ("c", None, None, "m") in allowed and ("b", None, None, "m") in allowed
    fuse = devices.index({"allow": False, "type": "c", "major": 10, "minor": 229,
                          "access": "rwm"})
    wildcard = devices.index({"allow": True, "type": "c", "access": "m"})
    assert fuse < wildcard  # cgroup v1 cannot deny inside an allowed wildcard


def test_no_resource_limits_by_default() -> None:
    res = _spec()["linux"]["resources"]
    assert set(res) == {"devices"}


def test_resource_limits() -> None:
    cfg = _cfg(resources=Resources(memory=32 * 2**20, cpus=1.5, cpu_shares=512, pids_limit=20))
    res = _spec(cfg)["linux"]["resources"]
    assert res["memory"] == {"limit": 33554432, "swap": 33554432}
    assert res["cpu"] == {"shares": 512, "quota": 150000, "period": 100000}
    assert res["pids"] == {"limit": 20}


def test_cpus_only() -> None:
    res = _spec(_cfg(resources=Resources(cpus=0.5)))["linux"]["resources"]
    assert res["cpu"] == {"quota": 50000, "period": 100000}


def test_seccomp_is_docker_default_for_the_caps() -> None:
    seccomp = _spec()["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    names = {n for r in seccomp["syscalls"] for n in r["names"]}
    assert "read" in names and "mount" not in names


def test_nofile_hard_limit_is_capped() -> None:
    p = _spec(nofile_hard=512)["process"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}]


def test_spec_is_fresh_each_call() -> None:
    a = _spec()
    a["linux"]["resources"]["devices"][0]["allow"] = True
    a["linux"]["seccomp"]["syscalls"].clear()
    b = _spec()
    assert b["linux"]["resources"]["devices"][0]["allow"] is False
    assert b["linux"]["seccomp"]["syscalls"]


def test_unlimited_pids_writes_no_pids_limit() -> None:
    res = _spec(_cfg(resources=Resources(pids_limit=-1)))["linux"]["resources"]
    assert "pids" not in res
