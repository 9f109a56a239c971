"""Procfiles and buildpack release output: process types as ``{name: command}`` (pure).

A Procfile line is ``name: command`` (names ``[A-Za-z0-9_-]+``, each once);
blank lines and ``#`` comments are allowed. ``bin/release`` prints YAML of
which paas reads ``default_process_types`` (a mapping, or ``{}``); the app's
Procfile wins over those defaults. Process types travel in the image config as
the JSON label ``PROCESSES_LABEL``.

Not here: running processes (deploy), detecting buildpacks (``buildpacks``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ..errors import InvalidArgument
from ..model import ImageConfig

__all__ = ["PROCESSES_LABEL", "merge", "parse_procfile", "parse_release", "processes_of"]

PROCESSES_LABEL = "io.paas.processes"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_LINE_RE = re.compile(r"^([^:\s][^:]*?)\s*:\s*(.*)$")


def parse_procfile(text: str, source: str = "Procfile") -> dict[str, str]:
    """``{type: command}`` in file order; InvalidArgument naming the bad line."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if not m or not m.group(2).strip():
            raise InvalidArgument(f"{source} line {number}: expected 'name: command', got {raw!r}",
                                  "write one process per line, e.g. web: gunicorn app:app")
        name, command = m.group(1), m.group(2).strip()
        if not _NAME_RE.match(name):
            raise InvalidArgument(f"{source} line {number}: invalid process type {name!r}",
                                  "use letters, digits, '-' and '_'")
        if name in out:
            raise InvalidArgument(f"{source} line {number}: process type {name!r} is defined twice",
                                  "keep one line per process type")
        out[name] = command
    return out


def parse_release(text: str) -> dict[str, str]:
    """``default_process_types`` from ``bin/release`` output (the subset buildpacks print:
    ``default_process_types: {}`` or an indented ``name: command`` block)."""
    out: dict[str, str] = {}
    inside = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            key, _, rest = raw.partition(":")
            inside = key.strip() == "default_process_types" and not rest.strip()  # not "{}"
            continue
        if inside:
            name, sep, command = raw.strip().partition(":")
            if not sep or not _NAME_RE.match(name.strip()):
                raise InvalidArgument(f"buildpack release output has a bad process line: {raw!r}",
                                      "fix the buildpack's bin/release")
            try:
                out[name.strip()] = _unquote(command.strip())
            except ValueError as err:
                raise InvalidArgument(f"buildpack release output has a bad quoted command: "
                                      f"{raw!r} ({err})", "fix the buildpack's bin/release") from err
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        if value[0] == '"':
            loaded = json.loads(value)
            return str(loaded)
        return value[1:-1].replace("''", "'")
    return value


def merge(defaults: Mapping[str, str], procfile: Mapping[str, str]) -> dict[str, str]:
    return {**defaults, **procfile}


def processes_of(cfg: ImageConfig) -> dict[str, str]:
    """The process types an image carries (from a buildpack build), else ``{}``."""
    raw = dict(cfg.labels).get(PROCESSES_LABEL)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise InvalidArgument(f"the image label {PROCESSES_LABEL} is not valid JSON: {err}",
                              "rebuild the image; do not set this label by hand") from err
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}
