"""paas report's pure parts: cgroup mode, tool versions, disk verdict, the git HTTP port,
and the rendering (sections, problems with fixes)."""

from __future__ import annotations

from paas.cli.doctor import report_lines
from paas.doctor.checks import Check, cgroup_mode, disk_check, first_version, git_http_port

V2 = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = ("31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "32 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")
HYBRID = V1 + "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"


def test_cgroup_mode() -> None:
    assert cgroup_mode(V2) == "v2"
    assert cgroup_mode(V1) == "v1"
    assert cgroup_mode(HYBRID) == "hybrid"
    assert cgroup_mode("22 1 0:5 / /proc rw - proc proc rw\n") == "none"


def test_first_version() -> None:
    assert first_version("runc version 1.1.5+ds1\ncommit: v1.1.5\nspec: 1.0.2-dev") == "1.1.5+ds1"
    assert first_version("nginx version: nginx/1.22.1\n") == "1.22.1"
    assert first_version("no numbers") == ""


def test_disk_check() -> None:
    assert disk_check("/r", 50 * 10**9, 100 * 10**9).ok
    low = disk_check("/r", 10**9, 100 * 10**9)
    assert not low.ok and "paas system:prune" in low.fix
    assert not disk_check("/r", 3 * 10**9, 40 * 10**9).ok  # under 10%
    assert "30GB free of 40GB (75%) under /r" == disk_check("/r", 30 * 10**9, 40 * 10**9).value


def test_git_http_port() -> None:
    assert git_http_port("") == 8022
    assert git_http_port("# c\nPAAS_HTTP_GIT_PORT='9000'\n") == 9000
    assert git_http_port("PAAS_HTTP_GIT_PORT=9000", "9100") == 9100
    assert git_http_port("PAAS_HTTP_GIT_PORT=99999") == 8022


def test_report_lines() -> None:
    checks = [Check("versions", "paas version", "0.1.0"),
              Check("services", "nginx", "not running", "nginx is not running",
                    "run 'paas nginx:start'"),
              Check("services", "git http", "nothing on port 8022", "no git over HTTP",
                    "systemctl start paas-git-http", warning=True)]
    assert report_lines(checks, "/srv/paas") == [
        "=====> paas report (/srv/paas)",
        "       paas version: 0.1.0",
        "=====> services",
        "       nginx:        not running  (problem)",
        "       git http:     nothing on port 8022  (warning)",
        "=====> 1 problem, 1 warning",
        " !     nginx is not running",
        "       fix: run 'paas nginx:start'",
        " !     no git over HTTP",
        "       fix: systemctl start paas-git-http",
    ]
    assert report_lines(checks[:1], "/r")[-1] == "=====> no problems found"
