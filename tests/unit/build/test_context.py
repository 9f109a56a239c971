"""Unit tests for paas.build.context: resolving COPY sources and their checksum.

Escape attempts point at a directory next to the context under the test's own
tmp dir ("outside"), never at a real host file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paas.build.context import (
    BuildContext,
    OutsideScope,
    Source,
    open_context,
    resolve_in_scope,
)
from paas.errors import InvalidArgument, NotFound

FORBIDDEN = "COPY failed: forbidden path outside the build context: "
MISSING = "COPY failed: file not found in build context or excluded by .dockerignore: "


def make_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def ctx_dir(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    ctx = tmp_path / "ctx"
    make_tree(ctx, {
        "Dockerfile": "FROM scratch\n",
        "app.py": "print()\n",
        "lib.py": "x = 1\n",
        "README.md": "readme\n",
        "src/main.c": "int main;\n",
        "src/util.c": "int util;\n",
        "src/include/util.h": "#pragma once\n",
        "docs/guide.md": "guide\n",
    })
    return ctx


def rels(sources: tuple[Source, ...]) -> list[str]:
    return [s.relpath for s in sources]


def test_open_context(ctx_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(ctx_dir)
    ctx = open_context(str(tmp_path / "link"))
    assert ctx.root == str(ctx_dir)  # realpath'd
    with pytest.raises(NotFound):
        open_context(str(tmp_path / "nope"))
    with pytest.raises(NotFound):
        open_context(str(ctx_dir / "app.py"))


def test_plain_sources(ctx_dir: Path) -> None:
    ctx = open_context(str(ctx_dir))
    src = ctx.resolve(["app.py", "/src", "./src/../lib.py", ".", "/"])
    assert rels(src) == ["app.py", "src", "lib.py", ".", "."]
    assert src[0] == Source("app.py", str(ctx_dir / "app.py"), False)
    assert src[1].is_dir and src[3].abspath == str(ctx_dir)
    assert rels(ctx.resolve(["Dockerfile"])) == ["Dockerfile"]  # an ordinary file


def test_wildcards_match_one_segment_sorted(ctx_dir: Path) -> None:
    ctx = open_context(str(ctx_dir))
    assert rels(ctx.resolve(["*.py"])) == ["app.py", "lib.py"]
    assert rels(ctx.resolve(["src/*.c"])) == ["src/main.c", "src/util.c"]
    assert rels(ctx.resolve(["*/*.c"])) == ["src/main.c", "src/util.c"]
    assert rels(ctx.resolve(["s?c/[mu]*.[ch]"])) == ["src/main.c", "src/util.c"]
    assert rels(ctx.resolve(["src/[^m]*.c"])) == ["src/util.c"]
    assert rels(ctx.resolve(["*.py", "README.md"])) == ["app.py", "lib.py", "README.md"]
    with pytest.raises(NotFound, match=r"file not found .*: \*\.rs$"):
        ctx.resolve(["*.rs"])
    with pytest.raises(InvalidArgument):
        ctx.resolve(["src/[m"])


def test_dotfiles_match_star(ctx_dir: Path) -> None:
    (ctx_dir / ".env").write_text("A=1\n")
    assert ".env" in rels(open_context(str(ctx_dir)).resolve(["*"]))


@pytest.mark.parametrize("pattern", ["../outside/secret", "..", "src/../../outside", "./../x"])
def test_parent_paths_are_forbidden(ctx_dir: Path, pattern: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        open_context(str(ctx_dir)).resolve([pattern])
    assert err.value.message == FORBIDDEN + pattern


def test_absolute_parent_path_is_clamped(ctx_dir: Path) -> None:
    assert rels(open_context(str(ctx_dir)).resolve(["/../app.py"])) == ["app.py"]


def test_missing_source(ctx_dir: Path) -> None:
    with pytest.raises(NotFound) as err:
        open_context(str(ctx_dir)).resolve(["app.py", "nope.txt"], instruction="ADD")
    assert err.value.message == (
        "ADD failed: file not found in build context or excluded by .dockerignore: nope.txt"
    )
    with pytest.raises(NotFound):
        open_context(str(ctx_dir)).resolve(["app.py/x"])


def test_symlinks_inside_the_context_are_followed(ctx_dir: Path) -> None:
    (ctx_dir / "link.py").symlink_to("app.py")
    (ctx_dir / "srclink").symlink_to("src")
    (ctx_dir / "src" / "up").symlink_to("../docs")
    (ctx_dir / "abs").symlink_to(ctx_dir / "README.md")  # host path into the context
    ctx = open_context(str(ctx_dir))
    link, srclink, up, absl = ctx.resolve(["link.py", "srclink", "src/up/guide.md", "abs"])
    assert link == Source("link.py", str(ctx_dir / "app.py"), False)
    assert srclink == Source("srclink", str(ctx_dir / "src"), True)
    assert up.abspath == str(ctx_dir / "docs" / "guide.md")
    assert absl.abspath == str(ctx_dir / "README.md")
    assert rels(ctx.resolve(["srclink/*.c"])) == ["srclink/main.c", "srclink/util.c"]


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("esc_rel", "../outside/secret"),
        ("esc_abs", "{tmp}/outside/secret"),
        ("esc_dir", "../outside"),
        ("esc_root", "/"),
    ],
)
def test_symlinks_out_of_the_context_are_forbidden(
    ctx_dir: Path, tmp_path: Path, name: str, target: str
) -> None:
    (ctx_dir / name).symlink_to(target.format(tmp=tmp_path))
    (ctx_dir / "hop").symlink_to(name)
    ctx = open_context(str(ctx_dir))
    for pattern in (name, "hop", "esc*"):
        with pytest.raises(InvalidArgument) as err:
            ctx.resolve([pattern])
        assert err.value.message == FORBIDDEN + pattern
    if name == "esc_dir":
        with pytest.raises(InvalidArgument):
            ctx.resolve([f"{name}/secret"])
        with pytest.raises(InvalidArgument):
            ctx.resolve([f"{name}/*"])


def test_symlink_loop(ctx_dir: Path) -> None:
    (ctx_dir / "a").symlink_to("b")
    (ctx_dir / "b").symlink_to("a")
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        open_context(str(ctx_dir)).resolve(["a"])


def test_special_files_are_refused(ctx_dir: Path) -> None:
    os.mkfifo(ctx_dir / "fifo")
    with pytest.raises(InvalidArgument, match="not a regular file or directory"):
        open_context(str(ctx_dir)).resolve(["fifo"])


def test_dockerignored_sources_do_not_exist(ctx_dir: Path) -> None:
    (ctx_dir / ".dockerignore").write_text("*.md\nsrc/include\n")
    ctx = open_context(str(ctx_dir))
    with pytest.raises(NotFound) as err:
        ctx.resolve(["README.md"])
    assert err.value.message == MISSING + "README.md"
    with pytest.raises(NotFound):
        ctx.resolve(["src/include/util.h"])  # below an excluded directory
    with pytest.raises(NotFound):
        ctx.resolve(["*.md"])
    assert rels(ctx.resolve(["*"])) == [".dockerignore", "Dockerfile", "app.py", "docs", "lib.py",
                                        "src"]
    assert rels(ctx.resolve([".dockerignore"])) == [".dockerignore"]


def test_ignored_symlink_to_outside_is_simply_absent(ctx_dir: Path, tmp_path: Path) -> None:
    (ctx_dir / "evil").symlink_to(tmp_path / "outside")
    (ctx_dir / ".dockerignore").write_text("evil\n")
    ctx = open_context(str(ctx_dir))
    assert "evil" not in rels(ctx.resolve(["*"]))
    with pytest.raises(NotFound):
        ctx.resolve(["evil"])


def test_symlink_to_an_ignored_file_is_not_found(ctx_dir: Path) -> None:
    (ctx_dir / "readme").symlink_to("README.md")
    (ctx_dir / ".dockerignore").write_text("README.md\n")
    with pytest.raises(NotFound):
        open_context(str(ctx_dir)).resolve(["readme"])


def test_excluded_dir_with_an_exception_exists(ctx_dir: Path) -> None:
    (ctx_dir / ".dockerignore").write_text("docs\n!docs/guide.md\nsrc\n")
    ctx = open_context(str(ctx_dir))
    (docs,) = ctx.resolve(["docs"])
    assert [e.relpath for e in ctx.entries(docs)] == ["guide.md"]
    with pytest.raises(NotFound):
        ctx.resolve(["src"])


def test_entries_skip_ignored_and_special_files(ctx_dir: Path) -> None:
    (ctx_dir / ".dockerignore").write_text("**/*.h\n*.md\n!docs/guide.md\n")
    os.mkfifo(ctx_dir / "src" / "fifo")
    (ctx_dir / "src" / "link").symlink_to("/nowhere")
    ctx = open_context(str(ctx_dir))
    (root,) = ctx.resolve(["."])
    assert [e.relpath for e in ctx.entries(root)] == [
        ".dockerignore", "Dockerfile", "app.py", "docs", "docs/guide.md", "lib.py", "src",
        "src/include", "src/link", "src/main.c", "src/util.c",
    ]
    (src,) = ctx.resolve(["src"])
    assert [e.relpath for e in ctx.entries(src)] == ["include", "link", "main.c", "util.c"]


# -- checksum -------------------------------------------------------------------


def checksum(ctx_dir: Path, *patterns: str) -> str:
    ctx = open_context(str(ctx_dir))
    return ctx.checksum(ctx.resolve(list(patterns)))


def test_checksum_is_stable_and_well_formed(ctx_dir: Path) -> None:
    first = checksum(ctx_dir, ".")
    assert first.startswith("sha256:") and len(first) == 71
    assert checksum(ctx_dir, ".") == first
    assert checksum(ctx_dir, "app.py") != checksum(ctx_dir, "lib.py")
    assert checksum(ctx_dir, "app.py", "lib.py") != checksum(ctx_dir, "lib.py", "app.py")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "src" / "main.c").write_text("int main2;\n"),
        lambda d: (d / "src" / "main.c").chmod(0o755),
        lambda d: (d / "src" / "include").chmod(0o700),
        lambda d: (d / "src" / "main.c").rename(d / "src" / "main2.c"),
        lambda d: (d / "src" / "new.c").write_text(""),
        lambda d: (d / "src" / "empty").mkdir(),
        lambda d: (d / "src" / "include" / "util.h").unlink(),
        lambda d: (d / "src" / "link").symlink_to("main.c"),
    ],
)
def test_checksum_changes_with_content(ctx_dir: Path, change: object) -> None:
    before = checksum(ctx_dir, "src")
    change(ctx_dir)  # type: ignore[operator]
    assert checksum(ctx_dir, "src") != before


def test_checksum_changes_with_symlink_target(ctx_dir: Path) -> None:
    (ctx_dir / "src" / "link").symlink_to("main.c")
    before = checksum(ctx_dir, "src")
    (ctx_dir / "src" / "link").unlink()
    (ctx_dir / "src" / "link").symlink_to("util.c")
    assert checksum(ctx_dir, "src") != before


def test_checksum_of_a_file_depends_on_its_name(ctx_dir: Path) -> None:
    (ctx_dir / "copy.py").write_text((ctx_dir / "app.py").read_text())
    assert checksum(ctx_dir, "copy.py") != checksum(ctx_dir, "app.py")


def test_checksum_ignores_mtime_and_owner(ctx_dir: Path) -> None:
    before = checksum(ctx_dir, ".")
    for path in ctx_dir.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    if os.geteuid() == 0:
        os.lchown(ctx_dir / "app.py", 1234, 5678)
        os.lchown(ctx_dir / "src", 1234, 5678)
    assert checksum(ctx_dir, ".") == before


def test_checksum_ignores_excluded_files(ctx_dir: Path) -> None:
    (ctx_dir / ".dockerignore").write_text("src/*.o\nsrc/include\n")
    before = checksum(ctx_dir, "src")
    (ctx_dir / "src" / "main.o").write_bytes(b"\x7fELF")
    (ctx_dir / "src" / "include" / "more.h").write_text("#define X\n")
    assert checksum(ctx_dir, "src") == before
    (ctx_dir / "src" / "main.c").write_text("changed\n")
    assert checksum(ctx_dir, "src") != before


def test_checksum_sees_a_content_change_of_the_same_size(ctx_dir: Path) -> None:
    ctx = open_context(str(ctx_dir))
    sources = ctx.resolve(["app.py"])
    before = ctx.checksum(sources)
    st = os.stat(ctx_dir / "app.py")
    (ctx_dir / "app.py").write_text("print(1)")  # 8 bytes, like before
    os.utime(ctx_dir / "app.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert ctx.checksum(sources) != before


def test_checksum_streams_large_files(ctx_dir: Path) -> None:
    big = ctx_dir / "big.bin"
    big.write_bytes(b"x" * (3 << 20) + b"y")
    before = checksum(ctx_dir, "big.bin")
    big.write_bytes(b"x" * (3 << 20) + b"z")
    assert checksum(ctx_dir, "big.bin") != before


def test_resolve_in_scope_clamps_or_refuses() -> None:
    links = {("a",): "/b/c", ("up",): "../..", ("b", "up"): "..", ("x",): "x"}

    def readlink(parts: tuple[str, ...]) -> str | None:
        return links.get(parts)

    assert resolve_in_scope(["a", "d"], readlink, clamp=True) == ("b", "c", "d")
    assert resolve_in_scope(["up", "c"], readlink, clamp=True) == ("c",)
    assert resolve_in_scope(["..", "..", "e"], readlink, clamp=True) == ("e",)
    assert resolve_in_scope(["b", "up", "e"], readlink, clamp=False) == ("e",)
    with pytest.raises(OutsideScope):
        resolve_in_scope(["up"], readlink, clamp=False)
    with pytest.raises(InvalidArgument):
        resolve_in_scope(["x"], readlink, clamp=True)


def test_build_context_without_ignore_file(ctx_dir: Path) -> None:
    ctx = BuildContext(str(ctx_dir))
    assert rels(ctx.resolve(["*.md"])) == ["README.md"]
