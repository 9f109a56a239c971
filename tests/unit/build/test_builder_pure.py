"""Pure parts of the builder: stage selection, cache keys, progress rendering."""

from __future__ import annotations

import json

from paas.build.builder import needed_stages
from paas.build.cache import step_key
from paas.build.dockerfile import parse
from paas.build.progress import BuildEvent, render_json, render_plain

DF = """\
ARG BASE=debian:bookworm
FROM $BASE AS deps
RUN echo deps
FROM deps AS build
RUN echo build
FROM debian:bookworm AS unrelated
RUN echo unrelated
FROM debian:bookworm AS final
COPY --from=build /x /x
"""


def test_needed_stages_follow_from_and_copy_from() -> None:
    df = parse(DF)
    assert needed_stages(df, 3, {"BASE": "debian:bookworm"}) == [0, 1, 3]
    assert needed_stages(df, 1, {"BASE": "debian:bookworm"}) == [0, 1]
    assert needed_stages(df, 2, {"BASE": "debian:bookworm"}) == [2]


def test_step_keys_are_stable_and_distinct() -> None:
    assert step_key("RUN", ("sh", "-c", "x"), ()) == step_key("RUN", ("sh", "-c", "x"), ())
    assert step_key("RUN", ("sh", "-c", "x"), ()) != step_key("RUN", ("sh", "-c", "x"), ("A=1",))
    assert step_key("RUN", "a b") != step_key("RUN", "a", "b")


def test_plain_rendering_is_dockers_classic_output() -> None:
    assert render_plain(BuildEvent("step", 3, 7, "RUN make")) == "Step 3/7 : RUN make\n"
    assert render_plain(BuildEvent("cached", image="sha256:" + "ab" * 32)) == (
        " ---> Using cache\n ---> abababababab\n")
    done = render_plain(BuildEvent("done", image="sha256:" + "cd" * 32, seconds=1.234))
    assert done == " ---> cdcdcdcdcdcd (1.23s)\n"
    assert render_plain(BuildEvent("tagged", text="app:latest")) == "Successfully tagged app:latest\n"


def test_json_rendering_one_object_per_line() -> None:
    line = render_json(BuildEvent("done", 2, 5, image="sha256:x", seconds=0.5))
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"kind": "done", "step": 2, "total": 5, "image": "sha256:x",
                                "seconds": 0.5}
