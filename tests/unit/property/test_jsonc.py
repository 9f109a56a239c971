"""``paas.jsonc`` (the CLI's JSON on ``_json`` alone) against ``json`` itself."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paas import jsonc

from .strategies import PROPERTY, nasty_text

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), nasty_text(20))
values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(nasty_text(10), inner, max_size=5)),
    max_leaves=20)


def _same(a: object, b: object) -> bool:
    """Equality where NaN equals NaN (json maps NaN to NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@PROPERTY
@given(values)
def test_dumps_is_json_dumps(value: object) -> None:
    assert jsonc.dumps(value) == json.dumps(value)
    assert jsonc.dumps(value, ensure_ascii=False) == json.dumps(value, ensure_ascii=False)


@PROPERTY
@given(values, st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_loads_reads_what_json_writes(value: object, space: str) -> None:
    text = space + json.dumps(value) + space
    assert _same(jsonc.loads(text), json.loads(text))
    assert _same(jsonc.loads(text.encode()), json.loads(text))


@PROPERTY
@given(nasty_text(30))
def test_loads_accepts_exactly_what_json_accepts(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            jsonc.loads(text)
        return
    assert _same(jsonc.loads(text), expected)


@pytest.mark.parametrize("bad", ["", "   ", "{", "[1] 2", "{\"a\": 1,}", "nope", "'x'"])
def test_loads_refuses_what_is_not_json(bad: str) -> None:
    with pytest.raises(ValueError):
        jsonc.loads(bad)


def test_loads_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ValueError):
        jsonc.loads(b"\"\xff\"")


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonc.dumps({"a": object()})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonc.dumps(loop)
    # a container may appear twice when it is not its own ancestor
    shared = [1]
    assert jsonc.dumps([shared, shared]) == "[[1], [1]]"
