"""Containers on real runc, overlayfs and cgroups: the seed walkthrough, isolation, limits,
detached containers under paasd, commit, and cleanliness after rm.

All tests share one instance (``engine``: debian:bookworm imported once, paasd running);
each test removes the containers it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


def _ids(engine) -> set[str]:
    return {c["ID"] for c in json.loads(engine("container:ps", "-a", "--format", "json").stdout)}


def test_run_prints_output_and_passes_exit_code(engine) -> None:
    res = engine("container:run", "--rm", "debian:bookworm", "sh", "-c", "echo hello; echo oops >&2; exit 3",
                 check=False)
    assert res.returncode == 3
    assert res.stdout == "hello\n"
    assert "oops" in res.stderr
    assert _ids(engine) == set()  # --rm removed it


def test_a_command_that_cannot_start_exits_like_docker_run(engine) -> None:
    """127: not found, 126: not executable (docker run's codes), attached and with -d;
    the container records the same code, and --rm still removes it."""
    bundles = _bundles(engine)
    for args, code in ((["nosuchcmd"], 127), (["/nonexistent/x"], 127), (["/etc/passwd"], 126)):
        res = engine("container:run", "--rm", "debian:bookworm", *args, check=False)
        assert res.returncode == code, (args, res.stderr)
        assert "failed to start" in res.stderr
    assert _ids(engine) == set()
    res = engine("container:run", "--name", "nostart", "debian:bookworm", "nosuchcmd", check=False)
    assert res.returncode == 127
    row = json.loads(engine("container:ps", "-a", "--format", "json").stdout)[0]
    assert row["Names"] == "nostart" and "Exited (127)" in row["Status"]
    engine("container:rm", "nostart")
    detached = engine("container:run", "-d", "--rm", "debian:bookworm", "nosuchcmd", check=False)
    assert detached.returncode == 127, detached.stderr
    assert "executable file not found" in detached.stderr
    for cid in _ids(engine):
        engine("container:rm", "-f", cid)
    # --rm bundles go after paasd's reply: gone before the next test counts them
    assert _wait_for(lambda: _bundles(engine) == bundles), _bundles(engine) ^ bundles


def test_usage_errors_of_run_come_from_paasd_in_one_line(engine) -> None:
    """container:run's flags are parsed by paasd; a usage error is one line, exit 125."""
    bundles = _bundles(engine)
    res = engine("container:run", "--bogus", "debian:bookworm", "true", check=False)
    assert res.returncode == 125
    assert res.stderr == ("error: unrecognized arguments: --bogus "
                          "(see 'paas container:run --help')\n")
    assert _ids(engine) == set()
    helped = engine("container:run", "--help")
    assert helped.stdout.startswith("usage: paas container:run")
    # after the image, --help is the command's
    echoed = engine("container:run", "--rm", "debian:bookworm", "sh", "-c", 'echo "$0"', "--help")
    assert echoed.stdout == "--help\n"
    assert _wait_for(lambda: _bundles(engine) == bundles), _bundles(engine) ^ bundles


def _bundles(engine) -> set[str]:
    return set(os.listdir(os.path.join(engine.env["PAAS_ROOT"], "containers")))


def _wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_rm_bundle_goes_after_the_reply_and_orphans_are_collected_at_start(engine) -> None:
    before = _bundles(engine)
    engine("container:run", "--rm", "debian:bookworm", "true")
    # the bundle (rootfs mount, upper dir) is removed by paasd's janitor after it replied
    assert _wait_for(lambda: _bundles(engine) == before), _bundles(engine) - before
    # a crash between the reply and that cleanup leaves a bundle without a record:
    # the next paasd start removes it (and its mount)
    orphan = os.path.join(engine.env["PAAS_ROOT"], "containers", "f" * 32)
    os.makedirs(os.path.join(orphan, "upper", "etc"))
    engine("daemon:stop")
    engine("daemon:start")
    assert not os.path.exists(orphan)
    assert _bundles(engine) == before


def test_container_sees_own_processes_hostname_and_root_in_userns(engine) -> None:
    res = engine("container:run", "--rm", "--hostname", "box1", "debian:bookworm",
                 "sh", "-c", "hostname; id -u; ls /proc | grep -c '^[0-9]'; cat /proc/self/uid_map")
    lines = res.stdout.split()
    assert lines[0] == "box1"
    assert lines[1] == "0"
    assert int(lines[2]) <= 3  # sh, ls, grep: only its own processes
    assert res.stdout.split("\n")[3].split() == ["0", "100000", "65536"]


def test_host_root_files_not_writable_from_container_root(engine, tmp_path: Path) -> None:
    target = tmp_path / "hostfile"
    target.write_text("host\n")
    os.chmod(target, 0o644)
    res = engine("container:run", "--rm", "-v", f"{tmp_path}:/h", "debian:bookworm",
                 "sh", "-c", "echo pwned > /h/hostfile; echo rc=$?", check=False)
    assert "rc=0" not in res.stdout
    assert target.read_text() == "host\n"


def test_readonly_bind_and_seccomp(engine, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("data\n")
    res = engine("container:run", "--rm", "-v", f"{tmp_path}:/h:ro", "--userns=host", "debian:bookworm",
                 "sh", "-c", "cat /h/f; touch /h/g; echo touch=$?; grep Seccomp: /proc/self/status")
    assert "data" in res.stdout
    assert "touch=1" in res.stdout
    assert "Seccomp:\t2" in res.stdout
    assert not (tmp_path / "g").exists()


def test_fresh_container_lacks_changes_and_commit_keeps_them(engine) -> None:
    engine("container:run", "--name", "seed", "debian:bookworm", "sh", "-c", "echo hi > /hello-marker")
    fresh = engine("container:run", "--rm", "debian:bookworm", "ls", "/hello-marker", check=False)
    assert fresh.returncode != 0
    t0 = time.monotonic()
    image_id = engine("container:commit", "seed", "seeded:v1").stdout.strip()
    assert time.monotonic() - t0 < 5
    assert image_id.startswith("sha256:")
    kept = engine("container:run", "--rm", "seeded:v1", "cat", "/hello-marker")
    assert kept.stdout == "hi\n"
    hist = json.loads(engine("image:history", "seeded:v1", "--format", "json").stdout)
    assert len(hist) >= 2
    engine("container:rm", "seed")
    engine("image:rm", "seeded:v1")


def test_memory_limit_kills_only_that_container(engine) -> None:
    res = engine("container:run", "--name", "oom", "--memory", "32m", "debian:bookworm",
                 "sh", "-c", "head -c 200m /dev/zero | tail > /dev/null", check=False)
    assert res.returncode == 137 or res.returncode == 1
    info = json.loads(engine("container:inspect", "oom").stdout)[0]
    assert info["State"]["OOMKilled"] is True
    assert info["HostConfig"]["Memory"] == 32 * 1024 * 1024
    engine("container:rm", "oom")


def test_pids_limit_stops_fork_bomb(engine) -> None:
    cid = engine("container:run", "-d", "--pids-limit", "20", "debian:bookworm", "bash", "-c",
                 "bomb() { bomb | bomb & }; bomb; sleep 30").stdout.strip()
    try:
        time.sleep(2)
        cg = Path(f"/sys/fs/cgroup/pids/paas-{engine.instance}/{cid}")
        assert int((cg / "pids.max").read_text()) == 20
        assert int((cg / "pids.current").read_text()) <= 20
        assert int((cg / "pids.events").read_text().split()[1]) > 0  # forks were refused
    finally:
        engine("container:rm", "-f", cid)
    _assert_clean(engine, cid)


def test_cpus_limit_is_written_to_cgroup(engine) -> None:
    cid = engine("container:run", "-d", "--cpus", "0.5", "debian:bookworm", "sleep", "30").stdout.strip()
    try:
        cg = Path(f"/sys/fs/cgroup/cpu/paas-{engine.instance}/{cid}")
        assert int((cg / "cpu.cfs_quota_us").read_text()) == 50000
        assert int((cg / "cpu.cfs_period_us").read_text()) == 100000
    finally:
        engine("container:rm", "-f", cid)


def test_detached_lifecycle_logs_stop_start_rm(engine) -> None:
    cid = engine("container:run", "-d", "--name", "ticker", "debian:bookworm",
                 "sh", "-c", "trap 'echo bye; exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
                 ).stdout.strip()
    assert len(cid) == 64
    time.sleep(1.0)
    ps = engine("container:ps").stdout
    assert "ticker" in ps and "Up " in ps
    logs = engine("container:logs", "ticker").stdout
    assert "tick 1\n" in logs
    stamped = engine("container:logs", "-t", "-n", "1", "ticker").stdout
    assert stamped.count("\n") == 1 and stamped[:4].isdigit() and "Z tick" in stamped
    engine("container:stop", "-t", "5", "ticker")
    info = json.loads(engine("container:inspect", "ticker").stdout)[0]
    assert info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 0
    assert "bye" in engine("container:logs", "ticker").stdout
    assert "Exited (0)" in engine("container:ps", "-a").stdout
    engine("container:start", "ticker")
    assert json.loads(engine("container:inspect", "ticker").stdout)[0]["State"]["Running"] is True
    rm = engine("container:rm", "ticker", check=False)
    assert rm.returncode != 0 and "stop it first" in rm.stderr
    engine("container:rm", "-f", "ticker")
    assert cid not in _ids(engine)
    _assert_clean(engine, cid)


def test_exec_and_kill(engine) -> None:
    # pid 1 ignores signals it has no handler for, so the container traps TERM itself
    engine("container:run", "-d", "--name", "ex", "debian:bookworm", "sh", "-c",
           "trap 'exit 143' TERM; while :; do sleep 0.1; done")
    out = engine("container:exec", "ex", "sh", "-c", "echo in-$(hostname); exit 4", check=False)
    assert out.returncode == 4 and out.stdout.startswith("in-")
    engine("container:kill", "-s", "TERM", "ex")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not json.loads(engine("container:inspect", "ex").stdout)[0]["State"]["Running"]:
            break
        time.sleep(0.1)
    info = json.loads(engine("container:inspect", "ex").stdout)[0]
    assert info["State"]["ExitCode"] == 143
    engine("container:rm", "ex")


def test_bad_inputs_fail_cleanly(engine) -> None:
    before = _ids(engine)
    cases = [
        (("container:run", "--rm", "nosuch:image", "true"), "No such image"),
        (("container:run", "--rm", "Bad_Ref!", "true"), "invalid reference"),
        (("container:run", "--rm", "--memory", "12zz", "debian:bookworm", "true"), "invalid size"),
        (("container:run", "--rm", "--bogus", "debian:bookworm", "true"), "unrecognized arguments"),
        (("container:run", "--rm", "-v", "rel:/x", "debian:bookworm", "true"), "absolute"),
        (("container:stop", "nosuchcontainer"), "no such container"),
    ]
    for args, needle in cases:
        res = engine(*args, check=False)
        assert res.returncode != 0, args
        assert needle.lower() in res.stderr.lower(), (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    engine("container:run", "--name", "dup", "debian:bookworm", "true")
    clash = engine("container:run", "--name", "dup", "debian:bookworm", "true", check=False)
    assert clash.returncode != 0 and "already in use" in clash.stderr
    engine("container:rm", "dup")
    assert _ids(engine) == before


def _assert_clean(engine, cid: str) -> None:
    mounts = Path("/proc/self/mountinfo").read_text()
    assert cid not in mounts
    assert not Path(engine.root, "containers", cid).exists()
    for ctrl in ("memory", "pids", "cpu"):
        assert not Path(f"/sys/fs/cgroup/{ctrl}/paas-{engine.instance}/{cid}").exists()
    runc = subprocess.run(["runc", "--root", str(Path(engine.root, "run", "runc")), "list", "-q"],
                          check=True, capture_output=True, text=True).stdout
    assert cid not in runc


_SERVER = ("$s=IO::Socket::INET->new(LocalPort=>5000,Listen=>5,ReuseAddr=>1) or die;"
           "while($c=$s->accept){print $c \"HTTP/1.0 200 OK\\r\\n\\r\\nfrom \".`hostname`; close $c}")


def _http_get(host: str, port: int) -> str:
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return s.recv(4096).decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_two_containers_on_port_5000_and_published_port(engine) -> None:
    a = engine("container:run", "-d", "--hostname", "alpha", "debian:bookworm",
               "perl", "-MIO::Socket::INET", "-e", _SERVER).stdout.strip()
    b = engine("container:run", "-d", "--hostname", "beta", "-p", "127.0.0.1::5000",
               "debian:bookworm", "perl", "-MIO::Socket::INET", "-e", _SERVER).stdout.strip()
    try:
        ips = {}
        for cid in (a, b):
            hosts = engine("container:exec", cid, "cat", "/etc/hosts").stdout
            ips[cid] = hosts.strip().splitlines()[-1].split()[0]
        assert ips[a] != ips[b]
        assert "from alpha" in _http_get(ips[a], 5000)
        assert "from beta" in _http_get(ips[b], 5000)
        port_line = engine("container:port", b).stdout.strip()
        assert port_line.startswith("5000/tcp -> 127.0.0.1:")
        host_port = int(port_line.rsplit(":", 1)[1])
        assert "from beta" in _http_get("127.0.0.1", host_port)
        assert f"127.0.0.1:{host_port}->5000/tcp" in engine("container:ps").stdout
        taken = engine("container:run", "--rm", "-p", f"127.0.0.1:{host_port}:80",
                       "debian:bookworm", "true", check=False)
        assert taken.returncode != 0 and "already in use" in taken.stderr
    finally:
        engine("container:rm", "-f", a, b)
    for cid in (a, b):
        _assert_clean(engine, cid)
        assert not Path(engine.root, "run", "netns", cid).exists()


def _forward_policy() -> str:
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True,
                           check=True).stdout
    return rules.splitlines()[0].split()[2]  # "-P FORWARD ACCEPT"


def test_seed_walkthrough_apt_get_hello_commit(engine) -> None:
    # another engine may have set the FORWARD policy to DROP: NAT out must still work
    policy = _forward_policy()
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    try:
        engine("container:run", "--name", "aptseed", "debian:bookworm", "sh", "-c",
               "apt-get update -qq && apt-get install -y -qq hello >/dev/null 2>&1 && hello",
               timeout=600)
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)
    assert "hello" not in engine("container:run", "--rm", "debian:bookworm", "sh", "-c",
                                 "command -v hello || echo missing").stdout.replace("missing", "")
    engine("container:commit", "aptseed", "hello:v1")
    assert engine("container:run", "--rm", "hello:v1", "hello").stdout == "Hello, world!\n"
    engine("container:rm", "aptseed")
    engine("image:rm", "hello:v1")


def test_publish_all_gives_random_host_ports(engine) -> None:
    cid = engine("container:run", "-d", "-P", "--expose", "5000", "debian:bookworm",
                 "perl", "-MIO::Socket::INET", "-e", _SERVER).stdout.strip()
    try:
        ports = json.loads(engine("container:port", cid, "--format", "json").stdout)
        assert [(p["ContainerPort"], p["Proto"], p["HostIp"]) for p in ports] == [(5000, "tcp", "0.0.0.0")]
        assert ports[0]["HostPort"] >= 1024
        assert "from " in _http_get("127.0.0.1", ports[0]["HostPort"])
    finally:
        engine("container:rm", "-f", cid)
