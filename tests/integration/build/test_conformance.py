"""Docker conformance of ``paas image:build``: every corpus case, built by paas, must give
the file tree (diff against its base) and config that Docker's classic builder gave.

The reference data is checked in (``expected/<case>.json``, written by
``make_expected.py`` with a private dockerd), so this runs without Docker. Both
engines import the same rootfs tar as ``debian:bookworm``.

Not here: builder behaviour Docker conformance does not cover (``test_build.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from casedefs import EXPECTED, Case, cases, prepare_context, tag_for
from imagetrees import Tree, config_fields, describe_diff, diff_trees, read_archive

# Known differences from Docker: case (or case/target) -> why. Each is strict, so a fix
# makes the test fail until the entry is removed.
XFAIL: dict[str, str] = {}  # every case matches Docker's classic builder


def _params() -> list[Any]:
    out = []
    for case in cases():
        for target in case.targets:
            key = f"{case.name}/{target}" if target else case.name
            reason = XFAIL.get(key) or XFAIL.get(case.name)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, target, id=key, marks=marks))
    return out


@pytest.fixture(scope="module")
def base_trees(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tree]:
    out = tmp_path_factory.mktemp("base") / "debian.tar"
    engine("image:save", "debian:bookworm", "-o", str(out))
    tree, _ = read_archive(out)
    return {"debian:bookworm": tree,
            "scratch": {"/": {"type": "dir", "mode": 0o755, "uid": 0, "gid": 0}}}


def test_corpus_has_expected_data_for_every_case() -> None:
    names = {c.name for c in cases()}
    have = {p.stem for p in EXPECTED.glob("*.json")}
    assert names == have, "run make_expected.py: cases and expected files differ"


@pytest.mark.parametrize(("case", "target"), _params())
def test_conformance(case: Case, target: str, engine: Any, base_trees: dict[str, Tree],
                     tmp_path: Path) -> None:
    expected = json.loads((EXPECTED / f"{case.name}.json").read_text())["images"][target]
    ctx = prepare_context(case, tmp_path / "ctx")
    tag = tag_for(case, target)
    res = engine("image:build", "--network", "none", "-t", tag, *case.build_flags(target),
                 str(ctx), check=False, timeout=600)
    assert res.returncode == 0, f"paas image:build failed:\n{res.stdout}{res.stderr}"
    archive = tmp_path / "image.tar"
    engine("image:save", tag, "-o", str(archive))
    tree, config = read_archive(archive)
    actual = {"config": config_fields(config),
              "diff": diff_trees(base_trees[case.base], tree)}
    # JSON round trip: the expected side has lists where Python has tuples, str keys
    actual = json.loads(json.dumps(actual))
    problems = []
    if actual["config"] != expected["config"]:
        problems.append("config fields differ (docker vs paas):\n"
                        + describe_diff("docker", expected["config"], "paas", actual["config"]))
    if actual["diff"] != expected["diff"]:
        problems.append("file tree differs from the base differently (docker vs paas):\n"
                        + describe_diff("docker", expected["diff"], "paas", actual["diff"]))
    assert not problems, f"{case.name} {target or ''}:\n" + "\n".join(problems) + \
        f"\n--- paas build output\n{res.stdout[-4000:]}"
