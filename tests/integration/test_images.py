"""The image store end to end: real Debian rootfs, the paas CLI, skopeo, umoci, mmdebstrap, overlayfs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]

pytestmark = pytest.mark.integration

Imported = tuple[str, str]  # (image id, layer digest)


@pytest.fixture
def imported(cli: CliRunner, rootfs_tar: Path) -> Imported:
    res = cli("image:import", str(rootfs_tar), "debian:bookworm")
    image_id = res.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert "-----> Importing" in res.stderr
    [info] = json.loads(cli("image:inspect", "debian:bookworm").stdout)
    return image_id, info["RootFS"]["Layers"][0]


def _other_cli(
    paas_root: dict[str, str], root: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = dict(paas_root, PAAS_ROOT=str(root), PAAS_INSTANCE=paas_root["PAAS_INSTANCE"] + "b")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [sys.executable, "-m", "paas", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        return res

    return run


def test_import_is_deterministic_across_instances(
    imported: Imported, paas_root: dict[str, str], rootfs_tar: Path
) -> None:
    second = Path(paas_root["PAAS_ROOT"]) / "second"
    other = _other_cli(paas_root, second)
    other("image:import", str(rootfs_tar), "debian:bookworm")
    [info] = json.loads(other("image:inspect", "debian:bookworm").stdout)
    assert info["RootFS"]["Layers"][0] == imported[1], "same rootfs tar, same layer digest"


def test_ls_inspect_history_tag_rm(cli: CliRunner, imported: Imported) -> None:
    image_id, layer = imported
    short = image_id[7:19]
    out = cli("image:ls").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:3] == ["debian", "bookworm", short]
    assert out[1].endswith("MB")

    [info] = json.loads(cli("image:inspect", short).stdout)
    assert info["Id"] == image_id and info["RepoTags"] == ["debian:bookworm"]
    assert info["Config"]["Cmd"] == ["bash"] and info["Os"] == "linux"
    assert info["RootFS"]["Layers"] == [layer] and info["Manifest"].startswith("sha256:")
    assert info["Size"] > 50_000_000

    hist = json.loads(cli("image:history", "debian:bookworm", "--format", "json").stdout)
    assert len(hist) == 1 and hist[0]["id"] == image_id and hist[0]["size"] == info["Size"]
    table = cli("image:history", "debian:bookworm").stdout.splitlines()
    assert table[0].split()[:2] == ["IMAGE", "CREATED"] and table[1].startswith(short)

    cli("image:tag", "debian:bookworm", "base:1")
    rows = json.loads(cli("image:ls", "--format", "json").stdout)
    assert sorted((r["Repository"], r["Tag"]) for r in rows) == [
        ("base", "1"),
        ("debian", "bookworm"),
    ]
    assert cli("image:ls", "-q").stdout.split() == [short]

    res = cli("image:rm", short, check=False)
    assert res.returncode == 4 and "must be forced" in res.stderr
    assert cli("image:rm", "base:1").stdout.splitlines() == ["Untagged: base:1"]
    res = cli("image:rm", "debian:bookworm")
    assert res.stdout.splitlines() == ["Untagged: debian:bookworm", f"Deleted: {image_id}"]
    assert cli("image:ls").stdout.splitlines()[1:] == []
    res = cli("image:inspect", "debian:bookworm", check=False)
    assert res.returncode == 3
    assert res.stderr.strip() == (
        "error: No such image: debian:bookworm (run 'paas image:ls' to see images, "
        "or 'paas image:bootstrap' to make a Debian base)"
    )


def test_rm_refuses_image_used_by_a_container(
    cli: CliRunner, imported: Imported, paas_root: dict[str, str]
) -> None:
    import sqlite3

    db = sqlite3.connect(Path(paas_root["PAAS_ROOT"]) / "state.db")
    with db:
        db.execute(
            "INSERT INTO containers (id, name, config, state, created) VALUES (?, ?, ?, 'exited', 0)",
            ("c" * 64, "web1", json.dumps({"image": "debian:bookworm", "image_id": imported[0],
                                           "args": ["true"], "network": "none"})),
        )
    db.close()
    res = cli("image:rm", "debian:bookworm", check=False)
    assert res.returncode == 4 and "being used by container web1" in res.stderr
    assert "debian" in cli("image:ls").stdout


def test_save_skopeo_umoci_load_and_mount(
    cli: CliRunner, imported: Imported, paas_root: dict[str, str], tmp_path: Path
) -> None:
    image_id, layer = imported
    archive = tmp_path / "debian.tar"
    cli("image:save", "debian:bookworm", "-o", str(archive))

    inspect = subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{archive}"], capture_output=True, text=True, check=False
    )
    assert inspect.returncode == 0, inspect.stderr
    meta = json.loads(inspect.stdout)
    assert meta["Layers"] == [layer] and meta["Os"] == "linux"

    layout = tmp_path / "layout"
    layout.mkdir()
    # GNU tar, not tarfile: extractall's filter= only exists from Python 3.11.4 on
    subprocess.run(["tar", "-xf", str(archive), "-C", str(layout)], check=True)
    bundle = tmp_path / "bundle"
    res = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:bookworm", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert (bundle / "rootfs" / "etc" / "debian_version").read_text().startswith("12")
    assert json.loads((bundle / "config.json").read_text())["process"]["args"] == ["bash"]

    # load into a fresh instance, then mount what rootfs_mount hands the runtime
    fresh = Path(paas_root["PAAS_ROOT"]) / "fresh"
    other = _other_cli(paas_root, fresh)
    assert other("image:load", "-i", str(archive)).stdout.strip() == "Loaded image: debian:bookworm"
    _mount_and_check(fresh, image_id, tmp_path)


def _mount_and_check(root: Path, image_id: str, tmp_path: Path) -> None:
    from paas.config import load_context
    from paas.image.store import ImageStore
    from paas.state import connect

    ctx = load_context({"PAAS_ROOT": str(root)})
    conn = connect(ctx.paths.db)
    store = ImageStore(ctx, conn)
    img = store.get("debian:bookworm")
    assert img.id == image_id
    upper, work, target = root / "c" / "upper", root / "c" / "work", root / "c" / "rootfs"
    for d in (upper, work, target):
        d.mkdir(parents=True)
    m = store.rootfs_mount(img, ctx.idmap, str(upper), str(work))
    subprocess.run(
        ["mount", "-t", m.type, "-o", ",".join(m.options), m.source, str(target)], check=True
    )
    try:
        version = target / "etc" / "debian_version"
        assert version.read_text().startswith("12")
        st = version.stat()
        assert (st.st_uid, st.st_gid) == (100000, 100000)
        assert (target / "usr" / "bin" / "bash").exists()
    finally:
        subprocess.run(["umount", str(target)], check=True)
    conn.close()


def _listing(cli: CliRunner) -> list[tuple[str, str, str, str]]:
    rows = json.loads(cli("image:ls", "--format", "json").stdout)
    return [(r["Repository"], r["Tag"], r["ID"], r["Size"]) for r in rows]


def test_corrupted_archive_leaves_store_unchanged(
    cli: CliRunner, imported: Imported, tmp_path: Path, paas_root: dict[str, str]
) -> None:
    archive = tmp_path / "ok.tar"
    cli("image:save", "debian:bookworm", "-o", str(archive))
    cli("image:tag", "debian:bookworm", "keep:me")
    cli("image:rm", "debian:bookworm")
    before = _listing(cli)
    blobs = Path(paas_root["PAAS_ROOT"]) / "images" / "blobs" / "sha256"
    blobs_before = sorted(os.listdir(blobs))
    bad = tmp_path / "bad.tar"
    layer_name = "blobs/sha256/" + imported[1].split(":")[1]
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            if m.name == layer_name and f is not None:
                data = bytearray(f.read())
                data[len(data) // 2] ^= 0x01
                f = io.BytesIO(bytes(data))
            dst.addfile(m, f)
    res = cli("image:load", "-i", str(bad), check=False)
    assert (
        res.returncode == 2
        and "corrupt" in res.stderr
        and len(res.stderr.strip().splitlines()) == 1
    )
    assert _listing(cli) == before and before
    assert sorted(os.listdir(blobs)) == blobs_before
    tmp = Path(paas_root["PAAS_ROOT"]) / "tmp"
    assert [p for p in os.listdir(tmp) if not p.endswith(".lock")] == []


def test_malicious_import_is_refused_cleanly(
    cli: CliRunner, paas_root: dict[str, str], tmp_path: Path
) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
        tar.addfile(link)
        f = tarfile.TarInfo("etc/pwned")
        f.size = 3
        tar.addfile(f, io.BytesIO(b"bad"))
    res = cli("image:import", str(evil), "evil", check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("error:") == 1
    assert not Path("/tmp/pwned").exists()
    snapshots = Path(paas_root["PAAS_ROOT"]) / "snapshots"  # base/ (views) or a range's
    assert [p for key in snapshots.iterdir() for p in key.iterdir()
            if p.name not in ("locks", "empty")] == []
    assert list((Path(paas_root["PAAS_ROOT"]) / "images" / "blobs" / "sha256").iterdir()) == []
    assert cli("image:ls").stdout.splitlines()[1:] == []


def test_bad_inputs_give_one_line(cli: CliRunner, tmp_path: Path) -> None:
    for args, code in [
        (("image:import", str(tmp_path / "missing.tar"), "x"), 3),
        (("image:tag", "nope", "x"), 3),
        (("image:rm", "nope"), 3),
        (("image:import", str(tmp_path), "Bad Name"), 2),
        (("image:bootstrap", "x", "--suite", "bad;suite"), 2),
        (("image:bootstrap", "x", "--include", "ok,--evil"), 2),
    ]:
        res = cli(*args, check=False)
        assert res.returncode == code, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: "), (
            args,
            res.stderr,
        )


def test_bootstrap_with_real_mmdebstrap(cli: CliRunner) -> None:
    res = cli("image:bootstrap", "deb:test", timeout=900)
    assert "-----> Bootstrapping deb:test (mmdebstrap bookworm, minbase)" in res.stderr
    assert "done in" in res.stderr
    image_id = res.stdout.strip()
    assert image_id.startswith("sha256:")
    hist = json.loads(cli("image:history", "deb:test", "--format", "json").stdout)
    assert hist[0]["created_by"] == "mmdebstrap --variant=minbase bookworm"
    [info] = json.loads(cli("image:inspect", "deb:test").stdout)
    assert info["Id"] == image_id and info["Config"]["Cmd"] == ["bash"]


def test_forty_layers_mount_and_whiteouts(paas_root: dict[str, str], tmp_path: Path) -> None:
    import time

    from paas.config import load_context
    from paas.image.store import ImageStore
    from paas.state import connect

    ctx = load_context(paas_root)
    conn = connect(ctx.paths.db)
    store = ImageStore(ctx, conn)
    base_tar = tmp_path / "base.tar"
    with tarfile.open(base_tar, "w") as tar:
        for name in ("etc", "gone"):
            d = tarfile.TarInfo(name)
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
        f = tarfile.TarInfo("etc/debian_version")
        f.size = 5
        tar.addfile(f, io.BytesIO(b"12.0\n"))
    img = store.import_rootfs(str(base_tar), "tiny")
    upper = tmp_path / "upper"
    slowest = 0.0
    for i in range(40):
        upper.mkdir()
        (upper / f"layer{i}").write_text(str(i))
        if i == 20:
            os.mknod(upper / "gone", 0o020000 | 0o600, os.makedev(0, 0))  # delete /gone
        start = time.monotonic()
        img = store.commit_layer(img, str(upper), "tiny:many" if i == 39 else None, idmap=ctx.idmap)
        slowest = max(slowest, time.monotonic() - start)
        subprocess.run(["rm", "-rf", str(upper)], check=True)
    assert len(img.diff_ids) == 41
    assert slowest < 1.0, f"commit_layer took {slowest:.2f}s"
    work_root = Path(ctx.paths.containers) / "t"
    up, work, target = work_root / "upper", work_root / "work", work_root / "rootfs"
    for d in (up, work, target):
        d.mkdir(parents=True)
    m = store.rootfs_mount(store.get("tiny:many"), ctx.idmap, str(up), str(work))
    assert m.options[0].count(":") == 40
    subprocess.run(
        ["mount", "-t", "overlay", "-o", ",".join(m.options), "overlay", str(target)], check=True
    )
    try:
        assert sorted(p.name for p in target.iterdir()) == sorted(
            ["etc", *[f"layer{i}" for i in range(40)]]
        )
        assert (target / "layer0").read_text() == "0" and (target / "layer39").read_text() == "39"
        assert (target / "etc" / "debian_version").stat().st_uid == 100000
    finally:
        subprocess.run(["umount", str(target)], check=True)
    conn.close()
