"""Unit tests for paas.build.ignore: .dockerignore parsing and matching.

The match tables come from moby/patternmatcher's tests (MatchesOrParentMatches)
and buildkit's dockerignore reader tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.build.ignore import IgnoreRules, clean_path, load_ignore, parse_ignore
from paas.errors import InvalidArgument


def rules(*patterns: str) -> IgnoreRules:
    return parse_ignore("\n".join(patterns))


# (pattern, path, excluded) from patternmatcher's TestMatches (paths with a trailing
# "/" left out: a context relpath never has one)
SINGLE = [
    ("**", "file", True),
    ("**/", "file", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\\\", "a\\", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    # from Go's filepath.Match tests
    ("*", "abc", True),
    ("a*", "ab/c", True),  # via the parent "ab"
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[^e-g]", "abc", True),
    ("ab[^c]", "abc", False),
    ("[\\]a]", "]", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), SINGLE)
def test_patternmatcher_table(pattern: str, path: str, expected: bool) -> None:
    assert rules(pattern).excluded(path) is expected


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3-py3-none-any.whl", False),
        (["*.go"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),  # last match wins
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["docs", "!docs/README.md"], "docs/other.md", True),
        (["docs", "!docs/README.md"], "docs", True),
        ([], "any/path/there", False),
    ],
)
def test_last_matching_pattern_wins(patterns: list[str], path: str, expected: bool) -> None:
    assert rules(*patterns).excluded(path) is expected


def test_parent_exclusion_covers_everything_below() -> None:
    r = rules("build")
    assert r.excluded("build")
    assert r.excluded("build/a/b/c.o")
    assert not r.excluded("builder/x")
    assert not r.excluded("src/build")  # patterns are anchored at the context root


def test_the_root_is_never_excluded() -> None:
    assert not rules("*", "**").excluded(".")


def test_parent_excluded_is_only_a_starting_state() -> None:
    r = rules("a", "a/b/c", "!a/b")
    for path in ("a", "a/b", "a/b/c", "a/x"):
        parent = path.rpartition("/")[0] or "."
        assert r.excluded(path, r.excluded(parent)) == r.excluded(path)
    assert not r.excluded("a/b/c")  # "!a/b" matches its parent and comes last


def test_parse_comments_blank_lines_whitespace_and_bom() -> None:
    text = "\ufeff# a comment\n\n  node_modules  \r\n\t*.pyc\n  # not a comment\n"
    assert parse_ignore(text).patterns == (
        ("node_modules", False),
        ("*.pyc", False),
        ("# not a comment", False),
    )


def test_parse_cleans_and_strips_leading_slash() -> None:
    r = parse_ignore("/foo\n./bar/\nbaz//qux/../quux\n! /keep/me\n/\n")
    assert r.patterns == (
        ("foo", False),
        ("bar", False),
        ("baz/quux", False),
        ("keep/me", True),
        ("/", False),
    )
    assert r.excluded("foo/x") and r.excluded("bar") and not r.excluded("keep")


@pytest.mark.parametrize("bad", ["!", "  !  ", "[", "a[", "[^bc", "\\", "[]a]", "[x-]", "[a-b-c]"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_ignore(f"ok\n{bad}\n")


def test_may_include_below() -> None:
    r = rules("node_modules", "docs", "!docs/README.md", "vendor", "!**/keep")
    assert r.may_include_below("docs")
    docs = rules("docs", "!docs/README.md")
    assert docs.may_include_below("docs")
    assert not docs.may_include_below("docs/sub")  # "!docs/README.md" cannot be below it
    assert r.may_include_below("node_modules")  # "!**/keep" could be anywhere
    assert not rules("node_modules").may_include_below("node_modules")
    assert not rules("a", "!b/c").may_include_below("a")


def test_clean_path_is_go_path_clean() -> None:
    cases = {
        "": ".", ".": ".", "/": "/", "//a//b/": "/a/b", "a/./b": "a/b", "a/../..": "..",
        "/../a": "/a", "../../a/b/../c": "../../a/c", "a/b/../../..": "..",
    }
    for path, want in cases.items():
        assert clean_path(path) == want, path


def test_load_ignore(tmp_path: Path) -> None:
    assert load_ignore(str(tmp_path)).patterns == ()
    (tmp_path / ".dockerignore").write_text("*.log\n!keep.log\n")
    r = load_ignore(str(tmp_path))
    assert r.excluded("x.log") and not r.excluded("keep.log")


def test_load_ignore_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "rules").write_text("*\n")
    (tmp_path / ".dockerignore").symlink_to(tmp_path / "rules")
    with pytest.raises(InvalidArgument):
        load_ignore(str(tmp_path))
