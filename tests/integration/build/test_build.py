"""``paas image:build`` behaviour that Docker conformance does not cover: the step cache,
build-arg invalidation, failures and their messages, --target, reproducible image ids
with SOURCE_DATE_EPOCH, JSON progress, ADD of URLs.

All tests share one instance (``engine``); contexts live in ``tmp_path``.

Not here: the files and config a build produces (``test_conformance.py``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

CACHED = " ---> Using cache"


def _context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        path = ctx / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ctx


def _steps(output: str) -> list[tuple[str, bool]]:
    """(instruction, cached) for every ``Step N/M : ...`` in a plain build log."""
    out: list[tuple[str, bool]] = []
    for block in re.split(r"^Step \d+/\d+ : ", output, flags=re.MULTILINE)[1:]:
        first, _, rest = block.partition("\n")
        out.append((first, rest.startswith(CACHED)))
    return out


def _image_id(engine: Any, ref: str) -> str:
    result: str = json.loads(engine("image:inspect", ref).stdout)[0]["Id"]
    return result


def _tags(engine: Any) -> set[str]:
    rows = json.loads(engine("image:ls", "--format", "json").stdout)
    return {f"{r['Repository']}:{r['Tag']}" for r in rows}


def _error(res: Any) -> str:
    """A failed command's stderr, which must be a clean message, not a traceback."""
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    return str(res.stderr)


CACHE_DOCKERFILE = """\
FROM debian:bookworm
ARG V=1
RUN echo "v=$V" > /v
COPY a.txt /a.txt
RUN cat /a.txt /v > /b
COPY c.txt /c.txt
ENV X=1
"""


def test_rebuild_uses_the_cache_and_a_changed_copy_source_reruns_from_there(
        engine: Any, tmp_path: Path) -> None:
    ctx = _context(tmp_path, CACHE_DOCKERFILE, **{"a.txt": "a\n", "c.txt": "c\n"})
    first = engine("image:build", "-t", "cache:1", str(ctx), timeout=300)
    assert not any(cached for _, cached in _steps(first.stdout)), first.stdout
    image = _image_id(engine, "cache:1")

    again = engine("image:build", "-t", "cache:2", str(ctx), timeout=300)
    steps = _steps(again.stdout)
    assert len(steps) == 7, again.stdout
    # ARG steps: see test_arg_steps_say_using_cache
    assert [s for s, cached in steps[1:] if not cached and not s.startswith("ARG")] == [], \
        again.stdout
    assert _image_id(engine, "cache:2") == image

    (ctx / "c.txt").write_text("changed\n")
    changed = engine("image:build", "-t", "cache:3", str(ctx), timeout=300)
    cached = [c for s, c in _steps(changed.stdout) if not s.startswith("ARG")]
    # RUN, COPY a.txt, RUN: cached; COPY c.txt and everything after: not
    assert cached[1:] == [True, True, True, False, False], changed.stdout
    assert _image_id(engine, "cache:3") != image

    fresh = engine("image:build", "--no-cache", "-t", "cache:4", str(ctx), timeout=300)
    assert CACHED not in fresh.stdout


def test_arg_steps_say_using_cache(engine: Any, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm\nARG V=1\nRUN echo $V\n")
    engine("image:build", str(ctx), timeout=300)
    again = engine("image:build", str(ctx), timeout=300)
    assert [c for _, c in _steps(again.stdout)] == [False, True, True], again.stdout


def test_a_build_arg_change_invalidates_the_steps_that_see_it(engine: Any,
                                                              tmp_path: Path) -> None:
    ctx = _context(tmp_path, CACHE_DOCKERFILE, **{"a.txt": "a\n", "c.txt": "c\n"})
    engine("image:build", "-t", "args:1", str(ctx), timeout=300)
    res = engine("image:build", "--build-arg", "V=2", "-t", "args:2", str(ctx), timeout=300)
    steps = _steps(res.stdout)
    run_v = next(i for i, (s, _) in enumerate(steps) if s.startswith("RUN echo"))
    assert [c for _, c in steps[run_v:]] == [False] * (len(steps) - run_v), res.stdout
    out = engine("container:run", "--rm", "args:2", "cat", "/b").stdout
    assert out == "a\nv=2\n"
    # and back: the V=1 images are still in the cache
    back = engine("image:build", "--build-arg", "V=1", "-t", "args:3", str(ctx), timeout=300)
    assert all(c for s, c in _steps(back.stdout)[1:] if not s.startswith("ARG")), back.stdout
    assert _image_id(engine, "args:3") == _image_id(engine, "args:1")


def test_a_failing_run_fails_the_build_shows_output_and_tags_nothing(
        engine: Any, tmp_path: Path) -> None:
    ok = _context(tmp_path / "ok", "FROM debian:bookworm\nRUN echo fine > /f\n")
    engine("image:build", "-t", "failing:keep", str(ok), timeout=300)
    before = _image_id(engine, "failing:keep")
    bad = _context(tmp_path / "bad", "FROM debian:bookworm\n"
                   "RUN echo out-before-fail; echo err-before-fail >&2; exit 3\n")
    for tag in ("failing:keep", "failing:new"):
        res = engine("image:build", "-t", tag, str(bad), check=False, timeout=300)
        err = _error(res)
        assert "out-before-fail" in res.stdout + err
        assert "err-before-fail" in res.stdout + err
        assert "returned a non-zero code: 3" in err, err
    assert "failing:new" not in _tags(engine)
    assert _image_id(engine, "failing:keep") == before


def test_missing_or_outside_copy_sources_give_one_clear_error(engine: Any,
                                                              tmp_path: Path) -> None:
    for i, (line, word) in enumerate([("COPY missing.txt /x", "missing.txt"),
                                      ("COPY ../outside /x", "../outside"),
                                      ("ADD nope*.txt /x/", "nope*.txt")]):
        ctx = _context(tmp_path / str(i), f"FROM debian:bookworm\n{line}\n")
        res = engine("image:build", "-t", f"missing:{i}", str(ctx), check=False, timeout=300)
        lines = [ln for ln in _error(res).splitlines() if ln.strip()]
        assert any(word in ln for ln in lines), res.stderr
        assert len(lines) <= 2, f"want one error line (and a hint), got:\n{res.stderr}"
        assert f"missing:{i}" not in _tags(engine)


def test_dockerfile_errors_name_the_line(engine: Any, tmp_path: Path) -> None:
    cases = {
        "FROM debian:bookworm\n\nBOGUS something\n": ("3", "BOGUS"),
        "FROM debian:bookworm\nRUN true\nENV ONLYNAME\n": ("3", "ENV"),
        "FROM debian:bookworm\nCOPY onlyone\n": ("2", "COPY"),
        "RUN true\n": ("1", "FROM"),
    }
    for i, (text, (line, word)) in enumerate(cases.items()):
        ctx = _context(tmp_path / str(i), text)
        err = _error(engine("image:build", str(ctx), check=False, timeout=300))
        assert f"Dockerfile:{line}" in err, err
        assert word in err, err


def test_target_stops_at_a_stage_and_an_unknown_target_is_refused(engine: Any,
                                                                   tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm AS one\nRUN echo 1 > /one\n"
                   "FROM one AS two\nRUN exit 1\n")
    res = engine("image:build", "--target", "one", "-t", "target:one", str(ctx), timeout=300)
    assert "exit 1" not in res.stdout
    assert engine("container:run", "--rm", "target:one", "cat", "/one").stdout == "1\n"
    err = _error(engine("image:build", "--target", "nope", str(ctx), check=False))
    assert "nope" in err


def test_source_date_epoch_makes_no_cache_builds_reproducible(
        engine: Any, instance_tools: Any, tmp_path: Path) -> None:
    _, cli_for = instance_tools
    cli = cli_for(dict(engine.env, SOURCE_DATE_EPOCH="0"))
    ctx = _context(tmp_path, "FROM debian:bookworm\nCOPY a.txt /a.txt\n"
                   "RUN mkdir /made && echo x > /made/x && ln -s x /made/y\n"
                   "ENV A=1\nCMD [\"cat\", \"/a.txt\"]\n", **{"a.txt": "a\n"})
    ids = []
    for tag in ("repro:1", "repro:2"):
        if ids:
            time.sleep(1.1)  # a wall-clock time leaking into the image must show
        cli("image:build", "--no-cache", "-t", tag, str(ctx), timeout=300)
        ids.append(_image_id(engine, tag))
    assert ids[0] == ids[1]
    created = json.loads(engine("image:inspect", "repro:1").stdout)[0]["Created"]
    assert created == "1970-01-01T00:00:00Z"


def test_json_progress_is_one_object_per_line(engine: Any, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm\nRUN echo hi\nLABEL a=b\n")
    res = engine("image:build", "--progress", "json", "--no-cache", "-t", "json:1", str(ctx),
                 timeout=300)
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert all(isinstance(e, dict) and "kind" in e for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds.count("step") == 3
    assert "built" in kinds and "tagged" in kinds
    assert any(e["kind"] == "output" and "hi" in e.get("text", "") for e in events)


def test_add_of_a_url_is_refused(engine: Any, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm\nADD https://example.com/file.txt /f\n")
    err = _error(engine("image:build", "-t", "url:1", str(ctx), check=False, timeout=300))
    assert "URL" in err and "Dockerfile:2" in err, err
    assert "url:1" not in _tags(engine)


def test_run_steps_get_a_low_cpu_weight(engine: Any, tmp_path: Path) -> None:
    """Apps serving during a deploy come first: build containers have a quarter of the
    default cpu.shares (cgroup v1 on this host; the v2 equivalent is cpu.weight)."""
    ctx = _context(tmp_path, "FROM debian:bookworm\n"
                   "RUN cat /sys/fs/cgroup/cpu/cpu.shares || cat /sys/fs/cgroup/cpu.weight\n")
    res = engine("image:build", "--no-cache", "--progress", "plain", str(ctx), timeout=300)
    lines = [ln.strip() for ln in res.stdout.splitlines()]
    assert "256" in lines or "10" in lines, res.stdout  # cpu.shares 256 is cpu.weight 10
