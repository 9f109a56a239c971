"""JSON for the CLI's hot path, straight on ``_json``, the C code under ``json``.

``import json`` costs ~8 ms of every CLI call: its decoder imports ``re``,
which imports ``enum``. ``dumps`` and ``loads`` here drive the same C encoder
and scanner that ``json`` uses, set up as ``json.dumps`` and ``json.loads``
set them up with their default arguments, so the output and the accepted
input are the same (tests/unit/test_jsonc.py checks both against ``json``).

Not covered: ``indent``, ``sort_keys``, hooks, ``cls``; use ``json`` for those
(off the hot path its import cost does not matter).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "loads"]

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _unsupported(obj: object) -> None:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _encoder(ascii_only: bool):  # type: ignore[no-untyped-def]
    # c_make_encoder(markers, default, encoder, indent, key_separator, item_separator,
    #                sort_keys, skipkeys, allow_nan): json.JSONEncoder's defaults
    escape = _json.encode_basestring_ascii if ascii_only else _json.encode_basestring
    return escape, _json.make_encoder({}, _unsupported, escape, None, ": ", ", ",
                                      False, False, True)


def dumps(obj: Any, *, ensure_ascii: bool = True) -> str:
    """``json.dumps(obj, ensure_ascii=...)``."""
    escape, encode = _encoder(ensure_ascii)  # a fresh one: its circular-reference markers
    if isinstance(obj, str):
        return str(escape(obj))
    return "".join(encode(obj, 0))


class _Context:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # typeshed: a JSONDecoder


def loads(text: str | bytes) -> Any:
    """``json.loads(text)`` for UTF-8 ``bytes`` or ``str``; ``ValueError`` when not JSON."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration as err:
        raise ValueError(f"Expecting value: char {err.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return obj
