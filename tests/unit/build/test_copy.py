"""Unit tests for paas.build.copy: COPY/ADD into a root filesystem directory.

Escape attempts aim at a directory next to the root under the test's own tmp
dir ("outside"), never at a real host file. As root the copies are chowned to
1234:5678; otherwise to the caller's own ids, so the tests do not need root.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from prereq import unavailable

from paas.build.context import open_context
from paas.build.copy import copy_sources, is_archive
from paas.errors import InvalidArgument, NotFound

ROOT = os.geteuid() == 0
UID, GID = (1234, 5678) if ROOT else (os.getuid(), os.getgid())
MTIME = 1_600_000_000


@pytest.fixture
def ctx_dir(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    for rel, text in {
        "app.py": "print('app')\n",
        "lib.py": "x = 1\n",
        "src/main.c": "int main;\n",
        "src/sub/deep.txt": "deep\n",
        "src/skip.o": "object\n",
    }.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    (ctx / "app.py").chmod(0o754)
    (ctx / "src").chmod(0o750)
    (ctx / "src" / "link").symlink_to("main.c")
    (ctx / ".dockerignore").write_text("src/*.o\n")
    for path in [*ctx.rglob("*"), ctx]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    return ctx


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "a" / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hostname").write_text("image\n")
    return r


def do_copy(ctx_dir: Path, root: Path, patterns: list[str], dest: str, **kw: object) -> None:
    ctx = open_context(str(ctx_dir))
    kw.setdefault("uid", UID)
    kw.setdefault("gid", GID)
    copy_sources(ctx, ctx.resolve(patterns), dest, str(root), **kw)  # type: ignore[arg-type]


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- COPY -----------------------------------------------------------------------


def test_file_to_file(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["app.py"], "/opt/app/run.py")
    out = root / "opt" / "app" / "run.py"
    assert out.read_text() == "print('app')\n"
    assert mode(out) == 0o754
    assert os.lstat(out).st_mtime == MTIME
    assert owner(out) == (UID, GID)
    for created in (root / "opt", root / "opt" / "app"):
        assert owner(created) == (UID, GID) and mode(created) == 0o755


def test_file_into_dir(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["app.py"], "/srv/")
    assert (root / "srv" / "app.py").read_text() == "print('app')\n"
    do_copy(ctx_dir, root, ["lib.py"], "/etc")  # an existing dir, no trailing slash
    assert (root / "etc" / "lib.py").is_file()
    do_copy(ctx_dir, root, ["lib.py"], "/srv/.")
    assert (root / "srv" / "lib.py").is_file()


def test_existing_dirs_keep_their_metadata(ctx_dir: Path, root: Path) -> None:
    (root / "etc").chmod(0o711)
    before = owner(root / "etc")
    do_copy(ctx_dir, root, ["app.py"], "/etc/new/")
    assert mode(root / "etc") == 0o711 and owner(root / "etc") == before
    assert owner(root / "etc" / "new") == (UID, GID)


def test_replace_existing_file(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["app.py"], "/etc/hostname")
    assert (root / "etc" / "hostname").read_text() == "print('app')\n"


def test_dir_contents_are_copied(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["src"], "/usr/src/app")
    dest = root / "usr" / "src" / "app"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "link", "main.c", "sub", "sub/deep.txt",
    ]  # contents, not "src" itself; the .dockerignore'd skip.o is absent
    assert os.readlink(dest / "link") == "main.c"
    assert owner(dest / "link") == (UID, GID)
    assert mode(dest) == 0o755  # Docker's classic builder: created like a parent
    assert mode(root / "usr" / "src") == 0o755
    for path in (dest, dest / "sub", dest / "sub" / "deep.txt", dest / "main.c"):
        assert owner(path) == (UID, GID)
    for path in (dest / "sub", dest / "sub" / "deep.txt", dest / "main.c"):
        assert os.lstat(path).st_mtime == MTIME, path


def test_whole_context(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["."], "/app/")
    assert (root / "app" / "app.py").is_file()
    assert (root / "app" / ".dockerignore").is_file()
    assert not (root / "app" / "src" / "skip.o").exists()


def test_multiple_sources(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["*.py", "src/sub"], "/dst/")
    assert sorted(os.listdir(root / "dst")) == ["app.py", "deep.txt", "lib.py"]
    with pytest.raises(InvalidArgument) as err:
        do_copy(ctx_dir, root, ["*.py"], "/dst2")
    assert err.value.message == (
        "When using COPY with more than one source file, "
        "the destination must be a directory and end with a /"
    )
    assert not (root / "dst2").exists()


def test_relative_dest_uses_workdir(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["app.py"], "bin/run", workdir="/home/me")
    assert (root / "home" / "me" / "bin" / "run").is_file()
    do_copy(ctx_dir, root, ["lib.py"], ".", workdir="/home/me")
    assert (root / "home" / "me" / "lib.py").is_file()
    do_copy(ctx_dir, root, ["lib.py"], "../up.py", workdir="/home/me")
    assert (root / "home" / "up.py").is_file()


def test_chmod(ctx_dir: Path, root: Path) -> None:
    do_copy(ctx_dir, root, ["src"], "/s", chmod=0o700)
    assert mode(root / "s") == 0o700
    assert mode(root / "s" / "sub") == 0o700
    assert mode(root / "s" / "main.c") == 0o700
    do_copy(ctx_dir, root, ["app.py"], "/x/y/z", chmod=0o4755)
    assert mode(root / "x" / "y" / "z") == 0o4755
    assert mode(root / "x" / "y") == 0o755  # created parents: 0755 whatever chmod says


def test_default_owner_is_root(ctx_dir: Path, root: Path) -> None:
    if not ROOT:
        unavailable("chown to 0:0 needs root")
    ctx = open_context(str(ctx_dir))
    copy_sources(ctx, ctx.resolve(["app.py"]), "/new/", str(root))
    assert owner(root / "new") == (0, 0) and owner(root / "new" / "app.py") == (0, 0)


def test_file_onto_a_directory_inside_a_copied_dir_is_refused(ctx_dir: Path, root: Path) -> None:
    (root / "d" / "main.c").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="cannot replace the directory"):
        do_copy(ctx_dir, root, ["src"], "/d")


def test_dir_onto_a_file_is_refused(ctx_dir: Path, root: Path) -> None:
    with pytest.raises(InvalidArgument):
        do_copy(ctx_dir, root, ["src"], "/etc/hostname")
    with pytest.raises(InvalidArgument):
        do_copy(ctx_dir, root, ["app.py"], "/etc/hostname/x")


def test_missing_root(ctx_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        do_copy(ctx_dir, tmp_path / "nope", ["app.py"], "/x")


# -- staying inside root ----------------------------------------------------------


def test_absolute_dest_symlink_stays_inside_root(
    ctx_dir: Path, root: Path, outside: Path
) -> None:
    (root / "lnk").symlink_to(f"/../../{outside}")
    do_copy(ctx_dir, root, ["app.py"], "/lnk/victim")
    assert (outside / "victim").read_text() == "original"
    inside = root / str(outside).lstrip("/") / "victim"
    assert inside.read_text() == "print('app')\n"
    assert owner(root / str(outside).lstrip("/")) == (UID, GID)


def test_relative_dest_symlink_is_clamped_at_root(
    ctx_dir: Path, root: Path, outside: Path
) -> None:
    (root / "up").symlink_to("../../outside")  # from the host's view: tmp/outside
    do_copy(ctx_dir, root, ["src"], "/up/")
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (root / "outside" / "main.c").is_file()


def test_dest_file_symlink_is_followed_inside_root(
    ctx_dir: Path, root: Path, outside: Path
) -> None:
    (root / "etc" / "conf").symlink_to(f"{outside}/victim")
    do_copy(ctx_dir, root, ["app.py"], "/etc/conf")
    assert (outside / "victim").read_text() == "original"
    assert (root / str(outside).lstrip("/") / "victim").read_text() == "print('app')\n"


def test_symlinks_inside_copied_dirs(ctx_dir: Path, root: Path, outside: Path) -> None:
    dest = root / "d"
    dest.mkdir()
    (root / str(outside).lstrip("/")).mkdir(parents=True)
    (dest / "sub").symlink_to(f"/../..{outside}")  # a dir symlink: followed inside root
    (dest / "main.c").symlink_to(f"{outside}/victim")  # a file symlink: replaced
    do_copy(ctx_dir, root, ["src"], "/d")
    assert (outside / "victim").read_text() == "original"
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (root / str(outside).lstrip("/") / "deep.txt").read_text() == "deep\n"
    assert not (dest / "main.c").is_symlink()
    assert (dest / "main.c").read_text() == "int main;\n"


def test_merged_usr_symlink_is_followed(ctx_dir: Path, root: Path) -> None:
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    do_copy(ctx_dir, root, ["src"], "/lib/app")
    assert (root / "usr" / "lib" / "app" / "main.c").is_file()
    assert (root / "lib").is_symlink()


# -- ADD archives -----------------------------------------------------------------


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "",
         uid: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.linkname, ti.mtime, ti.uid = kind, mode, link, MTIME, uid
    return ti


GOOD = [
    (info("./", tarfile.DIRTYPE, mode=0o755), None),
    (info("./pkg/", tarfile.DIRTYPE, mode=0o750), None),
    (info("./pkg/bin", mode=0o755, uid=42), b"#!/bin/sh\n"),
    (info("./pkg/hard", tarfile.LNKTYPE, link="./pkg/bin"), None),
    (info("./pkg/soft", tarfile.SYMTYPE, link="bin"), None),
]


@pytest.mark.parametrize("compression", ["w", "w:gz", "w:bz2", "w:xz"])
def test_add_extracts_local_archives(
    ctx_dir: Path, root: Path, compression: str
) -> None:
    (ctx_dir / "pkg.data").write_bytes(tar_bytes(GOOD, compression))  # no telling name
    do_copy(ctx_dir, root, ["pkg.data"], "/opt", extract_archives=True)
    pkg = root / "opt" / "pkg"
    assert (pkg / "bin").read_text() == "#!/bin/sh\n"
    assert mode(pkg) == 0o750 and mode(pkg / "bin") == 0o755
    assert os.lstat(pkg / "hard").st_ino == os.lstat(pkg / "bin").st_ino
    assert os.readlink(pkg / "soft") == "bin"
    for path in (pkg, pkg / "bin", pkg / "soft", root / "opt"):
        assert owner(path) == (UID, GID)
    assert os.lstat(pkg).st_mtime == MTIME and os.lstat(pkg / "bin").st_mtime == MTIME


def test_add_copies_non_archives_and_copy_never_extracts(ctx_dir: Path, root: Path) -> None:
    (ctx_dir / "fake.tar.gz").write_text("not a tar\n")
    (ctx_dir / "real.tar").write_bytes(tar_bytes(GOOD))
    assert not is_archive(str(ctx_dir / "fake.tar.gz"))
    assert is_archive(str(ctx_dir / "real.tar"))
    do_copy(ctx_dir, root, ["fake.tar.gz"], "/x/", extract_archives=True)
    assert (root / "x" / "fake.tar.gz").read_text() == "not a tar\n"
    do_copy(ctx_dir, root, ["real.tar"], "/y/")
    assert (root / "y" / "real.tar").read_bytes() == (ctx_dir / "real.tar").read_bytes()


def test_add_archive_symlinked_parent_stays_inside_root(
    ctx_dir: Path, root: Path, outside: Path
) -> None:
    members = [
        (info("esc", tarfile.SYMTYPE, link=f"/../../{outside}"), None),
        (info("esc/victim"), b"pwned"),
        (info("rel", tarfile.SYMTYPE, link="../../../../outside"), None),
        (info("rel/new"), b"pwned"),
    ]
    (ctx_dir / "evil.tar").write_bytes(tar_bytes(members))
    do_copy(ctx_dir, root, ["evil.tar"], "/opt/x", extract_archives=True)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "original"
    assert (root / str(outside).lstrip("/") / "victim").read_text() == "pwned"
    assert (root / "outside" / "new").read_text() == "pwned"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (info("../../outside/victim"), "escapes"),
        (info("a/../../x"), "escapes"),
        (info("/abs/victim"), "absolute"),
        (info("dev", tarfile.CHRTYPE), "device"),
        (info("blk", tarfile.BLKTYPE), "device"),
        (info("fifo", tarfile.FIFOTYPE), "fifo"),
        (info("hard", tarfile.LNKTYPE, link="../../outside/victim"), "not a file extracted"),
        (info("hard", tarfile.LNKTYPE, link=f"{Path.cwd()}"), "not a file extracted"),
        (info("hard", tarfile.LNKTYPE, link="etc/hostname"), "not a file extracted"),
    ],
)
def test_add_refuses_malicious_members(
    ctx_dir: Path, root: Path, outside: Path, member: tarfile.TarInfo, why: str
) -> None:
    data = None if member.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE,
                                   tarfile.LNKTYPE) else b"pwned"
    (ctx_dir / "evil.tar").write_bytes(tar_bytes([(info("ok"), b"fine"), (member, data)]))
    with pytest.raises(InvalidArgument, match=why) as err:
        do_copy(ctx_dir, root, ["evil.tar"], "/", extract_archives=True)
    assert repr(member.name) in err.value.message
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "original"
    assert (root / "etc" / "hostname").read_text() == "image\n"
