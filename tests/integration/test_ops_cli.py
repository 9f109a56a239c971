"""Per-app operations through the real CLI in a throwaway instance: storage:*,
resource:*, ps:set/ps:report. Bad input is one error line and a non-zero exit, and
changes nothing; ``storage:ensure-directory`` makes a directory the app user of a
user-namespaced container (uid 1000 -> host 101000) can write, and a host-root one it
cannot (the last test runs real containers: debian imported, paasd started).

Deploys with these settings (cgroup limits, data across redeploys, OOM restarts) are
in tests/e2e/test_operations.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]

pytestmark = pytest.mark.integration

HOST_ROOT = 100000  # PAAS_SUBUID's default start: root in container:run's containers
APP_USER = HOST_ROOT + 1000
FIRST_APP_ROOT = 1000000  # an instance's first app's own range (tests' subuid pool)


def _one_error_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "(" in lines[0] and lines[0].endswith(")"), lines[0]  # with what to do
    return lines[0]


def test_storage_mount_list_unmount(cli: CliRunner, paas_root: dict[str, str],
                                    tmp_path: Path) -> None:
    cli("apps:create", "web")
    data = tmp_path / "data"
    data.mkdir()
    out = cli("storage:mount", "web", f"{data}:/data").stdout
    assert out.splitlines()[0] == f"-----> Mounted {data}:/data into the containers of web"
    assert "is owned by host uid 0: nobody in the containers" in out  # the id shift, said
    assert out.splitlines()[-1].endswith("next deploy or restart: paas ps:restart web")
    cli("storage:mount", "web", f"{data}/:/etc/app/:ro")
    assert cli("storage:list", "web").stdout.splitlines() == [
        "=====> web volume bind-mounts:", f"       {data}:/data", f"       {data}:/etc/app:ro"]
    assert json.loads(cli("storage:list", "web", "--format", "json").stdout) == [
        {"host_path": str(data), "container_path": "/data", "volume_options": ""},
        {"host_path": str(data), "container_path": "/etc/app", "volume_options": "ro"}]

    cli("storage:unmount", "web", f"{data}:/etc/app")
    assert [m["container_path"] for m in json.loads(
        cli("storage:list", "web", "--format", "json").stdout)] == ["/data"]
    assert data.is_dir()  # apps:destroy keeps it too: tests/e2e/test_operations.py


def test_storage_bad_input_is_one_line_and_changes_nothing(
        cli: CliRunner, paas_root: dict[str, str], tmp_path: Path) -> None:
    cli("apps:create", "web")
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "file").write_text("x")
    root = paas_root["PAAS_ROOT"]
    cases = [
        (("storage:mount", "web", "data:/data"), 2, "not an absolute path"),
        (("storage:mount", "web", f"{data}:data"), 2, "not an absolute path"),
        (("storage:mount", "web", f"{data}"), 2, "invalid mount"),
        (("storage:mount", "web", f"{data}:/a:/b"), 2, "invalid mount"),
        (("storage:mount", "web", f"{data}\n:/data"), 2, "NUL or line break"),
        (("storage:mount", "web", f"{data}:/proc/x"), 2, "reserved"),
        (("storage:mount", "web", f"{tmp_path}/missing:/data"), 2,
         "does not exist (create it, e.g. with: paas storage:ensure-directory web)"),
        (("storage:mount", "web", f"{tmp_path}/file:/data"), 2, "not a directory"),
        (("storage:mount", "web", f"{root}/repos:/data"), 2, "is paas's own state"),
        (("storage:mount", "web", f"{root}:/data"), 2, "is paas's own state"),
        (("storage:mount", "web", "/etc/ssh:/data"), 2, "inside the system directory /etc"),
        (("storage:mount", "nope", f"{data}:/data"), 3, "app nope does not exist"),
        (("storage:mount", "Bad_App", f"{data}:/data"), 2, "invalid app name"),
        (("storage:unmount", "web", f"{data}:/data"), 3, "web has no mount"),
        (("storage:list", "nope"), 3, "app nope does not exist"),
        (("storage:ensure-directory", "../etc"), 2, "invalid directory name"),
        (("storage:ensure-directory", "web", "--chown", "alice"), 2, "invalid --chown"),
        (("storage:ensure-directory", "web", "--chown", "70000"), 2, "invalid --chown"),
    ]
    for args, code, message in cases:
        line = _one_error_line(cli(*args, check=False), code)
        assert message in line, (args, line)
    assert json.loads(cli("storage:list", "web", "--format", "json").stdout) == []
    assert not os.path.exists(os.path.join(root, "data"))  # ensure-directory made nothing

    cli("storage:mount", "web", f"{data}:/data")
    again = _one_error_line(cli("storage:mount", "web", f"{tmp_path}:/data", check=False), 4)
    assert f"/data of web is already mounted from {data}" in again


def test_ensure_directory_owner_through_the_id_shift(cli: CliRunner,
                                                     paas_root: dict[str, str]) -> None:
    storage = Path(paas_root["PAAS_ROOT"]) / "data" / "storage"
    out = cli("storage:ensure-directory", "web").stdout
    assert f"Ensuring {storage / 'web'} exists" in out
    assert "Mount it with: paas storage:mount APP" in out  # no app web (yet)
    st = (storage / "web").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (APP_USER, APP_USER, 0o755)
    cli("storage:ensure-directory", "web", "--chown", "root")  # again: fine, owner changes
    assert (storage / "web").stat().st_uid == HOST_ROOT
    cli("storage:ensure-directory", "other", "--chown", "false")
    assert (storage / "other").stat().st_uid == 0
    cli("apps:create", "api")
    out = cli("storage:ensure-directory", "api", "--chown", "2000").stdout
    assert (storage / "api").stat().st_uid == FIRST_APP_ROOT + 2000  # the app's own range
    cli("storage:ensure-directory", "for-api", "--app", "api")
    assert (storage / "for-api").stat().st_uid == FIRST_APP_ROOT + 1000
    assert f"Mount it with: paas storage:mount api {storage / 'api'}:/data" in out
    (storage / "file").write_text("x")
    line = _one_error_line(cli("storage:ensure-directory", "file", check=False), 2)
    assert "exists and is not a directory" in line


def test_resource_limits_and_report(cli: CliRunner, paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    out = cli("resource:limit", "web", "--memory", "512M", "--cpus", "1").stdout
    assert out.splitlines()[:3] == ["=====> Setting resource limits for web (_default_)",
                                    "       memory: 512m", "       cpus: 1"]
    cli("resource:limit", "web", "--process-type", "worker", "--memory", "64m", "--pids", "50")
    cli("resource:limit", "web", "--process", "worker", "--pids-limit", "60")
    report = json.loads(cli("resource:report", "web", "--format", "json").stdout)
    assert report == {
        "limits": {"_default_": {"memory": "512m", "cpus": "1", "pids": "", "disk": ""},
                   "worker": {"memory": "64m", "cpus": "", "pids": "60", "disk": ""}},
        # the writable layer's size: the instance's default (PAAS_APP_DISK_LIMIT)
        "effective": {"worker": {"memory": "64m", "cpus": "1", "pids": "60", "disk": "10g"}}}
    text = cli("resource:report", "web").stdout.splitlines()
    assert text[0] == "=====> web resource information"
    assert "worker effective:" in text[-1]
    assert text[-1].endswith("memory=64m cpus=1 pids=60 disk=10g")

    cases = [
        (("resource:limit", "web"), "no limit given"),
        (("resource:limit", "web", "--memory", "lots"), "invalid size"),
        (("resource:limit", "web", "--memory", "1k"), "too small"),
        (("resource:limit", "web", "--cpus", "0"), "invalid --cpus"),
        (("resource:limit", "web", "--cpus", "1000"), "invalid --cpus"),
        (("resource:limit", "web", "--pids", "-5"), "invalid --pids-limit"),
        (("resource:limit", "web", "--disk", "1m"), "--disk 1m is too small"),
        (("resource:limit", "web", "--disk", "big"), "invalid size"),
        (("resource:limit", "web", "--process", "Web!", "--memory", "1g"), "invalid process type"),
        (("resource:limit-clear", "web", "--all", "--process", "web"), "cannot be combined"),
    ]
    for args, message in cases:
        assert message in _one_error_line(cli(*args, check=False), 2), args
    assert _one_error_line(cli("resource:limit", "nope", "--memory", "1g", check=False), 3)
    assert json.loads(cli("resource:report", "web", "--format", "json").stdout) == report

    cli("resource:limit-clear", "web")  # the default only, as in Dokku
    assert list(json.loads(cli("resource:report", "web", "--format", "json").stdout)
                ["limits"]) == ["worker"]
    cli("resource:limit-clear", "web", "--all")
    assert json.loads(cli("resource:report", "web", "--format", "json").stdout)["limits"] == {}


def test_ps_set_restart_policy_and_report(cli: CliRunner, paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    report = json.loads(cli("ps:report", "web", "--format", "json").stdout)
    assert report["restart_policy"] == "on-failure:10" and report["deployed"] is False
    out = cli("ps:set", "web", "restart-policy", "on-failure:3").stdout
    assert out.splitlines()[0] == "-----> Setting restart-policy to on-failure:3 for web"
    assert "Restart policy: on-failure:3" in cli("ps:report", "web").stdout
    settings = {r["key"]: r for r in json.loads(cli("settings", "web", "--format",
                                                    "json").stdout)}
    assert settings["restart-policy"]["value"] == "on-failure:3"
    for bad, message in ((("always:2",), "takes no retry count"),
                         (("sometimes",), "invalid restart policy")):
        line = _one_error_line(cli("ps:set", "web", "restart-policy", *bad, check=False), 2)
        assert message in line
    assert "unknown ps setting" in _one_error_line(
        cli("ps:set", "web", "stop-timeout", "5", check=False), 2)
    assert json.loads(cli("ps:report", "web", "--format", "json").stdout)[
        "restart_policy"] == "on-failure:3"
    cli("ps:set", "web", "restart-policy")  # no value: back to the default
    assert json.loads(cli("ps:report", "web", "--format", "json").stdout)[
        "restart_policy"] == "on-failure:10"
    assert json.loads(cli("ps", "web", "--format", "json").stdout) == []


def test_ps_set_init_process_and_host_ca_bundle(cli: CliRunner,
                                                paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    report = json.loads(cli("ps:report", "web", "--format", "json").stdout)
    assert (report["init_process"], report["host_ca_bundle"]) == ("true", "false")
    out = cli("ps:set", "web", "init-process", "false").stdout
    assert out.splitlines()[0] == "-----> Setting init-process to false for web"
    cli("ps:set", "web", "host-ca-bundle", "true")
    text = " ".join(cli("ps:report", "web").stdout.split())
    assert "Init process: false" in text and "Host CA bundle: true" in text
    for key in ("init-process", "host-ca-bundle"):
        assert "use true or false" in _one_error_line(
            cli("ps:set", "web", key, "yes", check=False), 2)
        cli("ps:set", "web", key)  # no value: back to the default
    report = json.loads(cli("ps:report", "web", "--format", "json").stdout)
    assert (report["init_process"], report["host_ca_bundle"]) == ("true", "false")


def test_network_set_allow_link_local_and_report(cli: CliRunner,
                                                paas_root: dict[str, str]) -> None:
    cli("apps:create", "web")
    assert json.loads(cli("network:report", "web", "--format", "json").stdout) == {
        "allow_link_local": False}
    out = cli("network:set", "web", "allow-link-local", "true").stdout
    assert out.splitlines()[0] == "-----> Setting allow-link-local to true for web"
    assert "Allow link local: true" in cli("network:report", "web").stdout
    for args, message in ((("allow-link-local", "yes"), "use true or false"),
                          (("bind-all-interfaces", "true"), "unknown network setting")):
        assert message in _one_error_line(cli("network:set", "web", *args, check=False), 2)
    assert "app nope does not exist" in _one_error_line(
        cli("network:set", "nope", "allow-link-local", "true", check=False), 3)
    cli("network:set", "web", "allow-link-local")  # no value: back to the default
    assert json.loads(cli("network:report", "web", "--format", "json").stdout) == {
        "allow_link_local": False}


def test_bind_mounts_and_the_user_namespace(engine: object) -> None:
    """What an app sees of a mounted directory: ensure-directory's owner maps to uid 1000
    inside, so the app user writes there (files land as host uid 101000); a directory of
    host root is nobody's inside, and not even the container's root may write to it."""
    run: CliRunner = engine  # type: ignore[assignment]
    root = Path(engine.env["PAAS_ROOT"])  # type: ignore[attr-defined]
    run("storage:ensure-directory", "web")
    ensured = root / "data" / "storage" / "web"
    res = run("container:run", "--rm", "-u", "1000", "-v", f"{ensured}:/data",
              "debian:bookworm", "sh", "-c", "echo hi > /data/f && stat -c %u /data")
    assert res.stdout.split() == ["1000"], res
    assert (ensured / "f").stat().st_uid == APP_USER
    run("storage:ensure-directory", "plain", "--chown", "false")
    plain = root / "data" / "storage" / "plain"
    res = run("container:run", "--rm", "-v", f"{plain}:/data", "debian:bookworm", "sh", "-c",
              "stat -c %u /data; echo x > /data/f", check=False)
    assert res.returncode != 0 and "Permission denied" in res.stderr, res
    assert res.stdout.split() == ["65534"]  # the overflow uid: unmapped host root
