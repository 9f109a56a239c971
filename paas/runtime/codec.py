"""JSON <-> frozen dataclasses of ``paas.model``, checked against the type hints.

Used where values cross a process boundary: the state DB (container configs)
and paasd's API (``RunOptions`` from the CLI). Untrusted input that does not
fit the declared types is an ``InvalidArgument`` naming the field, never a
half-built value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

from ..errors import InvalidArgument

__all__ = ["from_dict", "to_dict"]

T = TypeVar("T")


def to_dict(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _bad(path: str, want: str, got: Any) -> InvalidArgument:
    return InvalidArgument(f"{path}: expected {want}, got {type(got).__name__}",
                           "check the request body against paas.model")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _bad(path, "a list", value)
        (item, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(path, "a boolean", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(path, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _bad(path, "a string", value)
        return value
    raise InvalidArgument(f"{path}: unsupported field type {tp!r}", "this is a bug in paas")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build ``cls`` from ``data``; unknown keys and wrong types are InvalidArgument."""
    name = path or cls.__name__
    if not isinstance(data, dict):
        raise _bad(name, "an object", data)
    hints = _hints(typing.cast(Any, cls))
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise InvalidArgument(f"{name}: unknown field(s) {', '.join(sorted(unknown))}",
                              "check the request body against paas.model")
    kwargs = {k: _convert(hints[k], v, f"{name}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise InvalidArgument(f"{name}: {err}", "check the request body against paas.model") from err
