"""Properties of the app.json health-check parser (``paas.deploy.health``).

Any text gives a list of checks or ``InvalidArgument``; generated Dokku-style
documents come back as the checks they describe.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from paas.deploy.health import Check, checks_from_app_json
from paas.errors import InvalidArgument

from .strategies import PROPERTY, nasty_text

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text(10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text(8), inner, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(["path", "content", "timeout", "attempts", "wait", "initialDelay",
                         "name", "type"])
_CHECK = st.dictionaries(_KEYS, _JSON, max_size=6)
_DOC = st.one_of(
    _JSON,
    st.builds(lambda v: {"healthchecks": v}, _JSON),
    st.builds(lambda v: {"healthchecks": {"web": v}}, _JSON),
    st.builds(lambda v: {"healthchecks": {"web": v}}, st.lists(_CHECK, max_size=3)),
)


def _checks_or_invalid(text: str) -> list[Check] | None:
    try:
        checks = checks_from_app_json(text)
    except InvalidArgument as err:
        assert err.message.startswith("app.json")
        return None
    for c in checks:
        assert c.path == "" or c.path.startswith("/")
        assert c.attempts >= 1
        for number in (c.timeout, c.wait, c.initial_delay):
            assert math.isfinite(number) and number >= 0
    return checks


@PROPERTY
@given(nasty_text(200))
def test_any_text(text: str) -> None:
    _checks_or_invalid(text)


@PROPERTY
@given(_DOC)
def test_any_json_document(doc: Any) -> None:
    _checks_or_invalid(json.dumps(doc))


@PROPERTY
@given(st.sampled_from(["Infinity", "-Infinity", "NaN", "1e400", "1e308", "-0.0", "[[[[[[1]]]]]]"]),
       _KEYS)
def test_odd_numbers(number: str, key: str) -> None:
    _checks_or_invalid('{"healthchecks": {"web": [{"' + key + '": ' + number + "}]}}")


_PATH = st.from_regex(r"/[A-Za-z0-9/_.?=&-]{0,30}", fullmatch=True)
_SECONDS = st.integers(0, 600) | st.floats(0, 600, allow_nan=False)


@PROPERTY
@given(_PATH, nasty_text(20), _SECONDS, st.integers(1, 100), _SECONDS, _SECONDS)
def test_round_trip(path: str, content: str, timeout: float, attempts: int, wait: float,
                    delay: float) -> None:
    doc = {"healthchecks": {"web": [{"path": path, "content": content, "timeout": timeout,
                                     "attempts": attempts, "wait": wait,
                                     "initialDelay": delay}]}}
    try:
        text = json.dumps(doc)
    except UnicodeEncodeError:
        return
    assert checks_from_app_json(text) == [Check(path, content, float(timeout), attempts,
                                                float(wait), float(delay), path)]


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    for text in ("[" * 100_000 + "]" * 100_000, '{"healthchecks": ' + "[" * 100_000):
        assert _checks_or_invalid(text) is None
