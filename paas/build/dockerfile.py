"""Parse a Dockerfile into build stages, following buildkit's dockerfile frontend.

Covers the lexical layer (parser directives ``escape``/``syntax``/``check``, comments,
line continuations, a UTF-8 BOM, CRLF), builder flags (``--from=...``), JSON versus
shell form, the argument shape and syntax errors of every instruction, and grouping
into meta ``ARG``s and stages. Arguments are kept as written: quotes stay where Docker
keeps them, and variables are expanded later by the builder with
:mod:`paas.build.shellwords` and the build-time environment.

Not here: heredocs (``RUN <<EOF``; refused with an error), expansion, executing
anything, deciding which flags the builder supports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import InvalidArgument
from .shellwords import split_flags, split_words

__all__ = ["KEYWORDS", "Dockerfile", "Instruction", "Stage", "parse"]

KEYWORDS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
})
_DOCS = "see https://docs.docker.com/reference/dockerfile/"
_UNKNOWN_HINT = f"{_DOCS} for the instructions paas supports"


@dataclass(frozen=True)
class Instruction:
    """One instruction as written: ``args`` are not expanded and keep Docker's quotes.

    ``args`` per keyword: RUN/CMD/ENTRYPOINT/SHELL the JSON list (``json_form``) or
    ``(command line,)``; ENV/LABEL ``(key, value, key, value, ...)``; ARG the raw
    ``NAME`` / ``NAME=default`` words; COPY/ADD ``(*sources, dest)``; EXPOSE/VOLUME the
    words; WORKDIR/USER/STOPSIGNAL/MAINTAINER/ONBUILD ``(rest of line,)``; HEALTHCHECK
    ``("NONE",)`` or ``("CMD", *command)``. FROM becomes a :class:`Stage`.
    """

    keyword: str
    args: tuple[str, ...]
    json_form: bool = False
    flags: tuple[tuple[str, str], ...] = ()
    line: int = 0
    original: str = ""

    def flag(self, name: str) -> str | None:
        """The value of ``--name`` (the last one if repeated), None if absent."""
        values = self.flag_values(name)
        return values[-1] if values else None

    def flag_values(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable flag such as ``--mount`` or ``--exclude``, in order."""
        return tuple(value for key, value in self.flags if key == name)


@dataclass(frozen=True)
class Stage:
    """``FROM base [AS name]`` and the instructions up to the next FROM."""

    index: int
    base: str
    name: str | None
    line: int
    instructions: tuple[Instruction, ...]
    platform: str | None = None
    original: str = ""


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: its escape character, meta ARGs and stages."""

    path: str
    escape: str
    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]

    def stage_index(self, name_or_index: str) -> int | None:
        """The stage called ``name_or_index`` (case-insensitive) or numbered so; None if none."""
        wanted = name_or_index.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage.index
        if name_or_index.isascii() and name_or_index.isdigit():
            index = int(name_or_index)
            return index if index < len(self.stages) else None
        return None


class _Error(Exception):
    """A syntax error without its location; :func:`parse` adds ``path:line:``."""

    def __init__(self, message: str, hint: str = _DOCS) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``; ``path`` names it in errors (``path:line: message``)."""
    escape, lines = _logical_lines(text, path)
    instructions: list[Instruction] = []
    for number, line in lines:
        try:
            instructions.append(_instruction(line, number, escape))
        except _Error as err:
            raise InvalidArgument(f"{path}:{number}: {err.message}", err.hint) from None
    if not instructions:
        raise InvalidArgument(f"{path}:{max(1, text.count(chr(10)))}: the Dockerfile is empty "
                              "(no instructions)", f"start it with FROM <image>; {_DOCS}")
    return _group(instructions, path, escape)


# --- lines -----------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$", re.ASCII)
_DIRECTIVES = frozenset({"escape", "syntax", "check"})


def _logical_lines(text: str, path: str) -> tuple[str, list[tuple[int, str]]]:
    """The escape character and the (start line, joined text) of every instruction."""
    physical = text.removeprefix("\ufeff").split("\n")
    if physical[-1] == "":
        physical.pop()
    escape = "\\"
    seen: set[str] = set()
    in_directives = True
    lines: list[tuple[int, str]] = []
    index = 0
    while index < len(physical):
        number = index + 1
        first = physical[index].rstrip("\r").lstrip()
        index += 1
        if in_directives:
            directive = _directive(first, seen, f"{path}:{number}: ")
            in_directives = directive is not None
            if directive is not None and directive[0] == "escape":
                escape = directive[1]
        joined, more = _continued("" if first.startswith("#") else first, escape)
        if not more and not joined:
            continue
        while more and index < len(physical):
            raw = physical[index].rstrip("\r")
            index += 1
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue  # comments and empty lines inside a continuation are dropped
            part, more = _continued(raw, escape)
            joined += part
        if joined.strip():
            lines.append((number, joined))
    return escape, lines


def _directive(line: str, seen: set[str], where: str) -> tuple[str, str] | None:
    """``(name, value)`` if ``line`` is a parser directive, None if directives are over."""
    match = _DIRECTIVE.match(line)
    if match is None or match.group(1).lower() not in _DIRECTIVES:
        return None
    name, value = match.group(1).lower(), match.group(2)
    if name in seen:
        raise InvalidArgument(f"{where}only one {name} parser directive can be used",
                              "remove the duplicate directive")
    seen.add(name)
    if name == "escape" and value not in ("\\", "`"):
        raise InvalidArgument(f"{where}invalid escape token '{value}' does not match ` or \\",
                              "use '# escape=\\' or '# escape=`'")
    return name, value


def _continued(line: str, escape: str) -> tuple[str, bool]:
    """``line`` without a trailing continuation escape, and whether one was there.

    As buildkit: the escape (plus spaces/tabs after it) continues the line unless it is
    itself escaped, i.e. preceded by another escape character.
    """
    body = line.rstrip(" \t")
    if body.endswith(escape) and (len(body) == 1 or body[-2] != escape):
        return body[:-1], True
    return line, False


# --- one instruction --------------------------------------------------------------------

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_Args = tuple[tuple[str, ...], bool]


def _instruction(line: str, number: int, escape: str) -> Instruction:
    original = line.strip()
    parts = _WHITESPACE.split(original, maxsplit=1)
    word = parts[0]
    keyword = word.upper()
    if keyword not in KEYWORDS:
        raise _Error(f"unknown instruction: {word}", _UNKNOWN_HINT)
    rest, raw_flags = split_flags(parts[1] if len(parts) > 1 else "")
    flags = _check_flags(keyword, raw_flags)
    args, json_form = _PARSERS[keyword](rest.strip(), escape)
    if keyword in ("RUN", "COPY", "ADD") and not json_form:
        _refuse_heredoc(keyword, rest, escape)
    return Instruction(keyword, args, json_form, flags, number, original)


_STR, _BOOL, _LIST = "string", "bool", "list"
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": _STR},
    "COPY": {"from": _STR, "chown": _STR, "chmod": _STR, "link": _BOOL, "parents": _BOOL,
             "exclude": _LIST},
    "ADD": {"chown": _STR, "chmod": _STR, "checksum": _STR, "link": _BOOL,
            "keep-git-dir": _BOOL, "exclude": _LIST},
    "RUN": {"mount": _LIST, "network": _STR, "security": _STR, "device": _LIST},
    "HEALTHCHECK": {"interval": _STR, "timeout": _STR, "start-period": _STR,
                    "start-interval": _STR, "retries": _STR},
}


def _check_flags(keyword: str, raw: list[str]) -> tuple[tuple[str, str], ...]:
    """Validate flags like buildkit's BFlags.Parse: known names, values, no duplicates."""
    known = _FLAGS.get(keyword, {})
    accepted = ", ".join(f"--{name}" for name in known) or "no flags"
    flags: list[tuple[str, str]] = []
    for word in raw:
        name, equals, value = word[2:].partition("=")
        kind = known.get(name)
        if kind is None:
            raise _Error(f"Unknown flag: {name}", f"{keyword} accepts {accepted}")
        if kind != _LIST and any(seen == name for seen, _ in flags):
            raise _Error(f"Duplicate flag specified: {name}", f"give --{name} once")
        if kind == _BOOL and equals and value.lower() not in ("true", "false"):
            raise _Error(f"Expecting boolean value for flag {name}, not: {value}",
                         f"use --{name}, --{name}=true or --{name}=false")
        if kind != _BOOL and not equals:
            raise _Error(f"Missing a value on flag: {name}", f"use --{name}=VALUE")
        flags.append((name, value))
    if keyword == "HEALTHCHECK":
        _check_health_flags(flags)
    return tuple(flags)


_DURATION = re.compile(r"[+-]?(?:0|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)")


def _check_health_flags(flags: list[tuple[str, str]]) -> None:
    """Go durations (``30s``, ``1m30s``) and a non-negative integer, as Docker checks them."""
    for name, value in flags:
        if name == "retries" and not re.fullmatch(r"\+?[0-9]+", value):
            raise _Error(f'--retries must be a whole number, 0 or more, not "{value}"')
        if name != "retries" and value and not _DURATION.fullmatch(value):
            raise _Error(f'time: invalid duration "{value}" in --{name}',
                         "use a duration such as 30s, 1m30s or 500ms")


_HEREDOC = re.compile(r"^[0-9]*<<-?[^<]+$")


def _refuse_heredoc(keyword: str, rest: str, escape: str) -> None:
    for word in split_words(rest, escape):
        if _HEREDOC.match(word):
            raise _Error(f"heredocs are not supported ({word} in {keyword})",
                         "put the content in a file in the build context and COPY it")


# --- arguments per keyword --------------------------------------------------------------


def _json_list(rest: str) -> list[str] | None:
    """The strings of a JSON array, None if ``rest`` is not one (then it is shell form)."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise _Error("when using JSON array syntax, arrays must be comprised of strings only",
                     'quote every element: ["executable", "param1"]')
    return value


def _exec_or_shell(keyword: str) -> Callable[[str, str], _Args]:
    def parse_args(rest: str, escape: str) -> _Args:
        words = _json_list(rest)
        if words is not None:
            if not words and keyword not in ("CMD", "ENTRYPOINT"):
                raise _Error(f"{keyword} requires at least one argument")
            return tuple(words), True
        if not rest:
            raise _Error(f"{keyword} requires at least one argument")
        if keyword == "SHELL":
            raise _Error("SHELL requires the arguments to be in JSON form",
                         'write it as SHELL ["executable", "parameters"]')
        return (rest,), False
    return parse_args


def _sources_and_dest(keyword: str) -> Callable[[str, str], _Args]:
    def parse_args(rest: str, escape: str) -> _Args:
        words = _json_list(rest)
        args = tuple(words) if words is not None else _whitespace_words(rest)
        if len(args) < 2:
            raise _Error(f"{keyword} requires at least two arguments, but only one was "
                         "provided. Destination could not be determined",
                         f"write {keyword} <src>... <dest>")
        return args, words is not None
    return parse_args


def _exactly_one(keyword: str) -> Callable[[str, str], _Args]:
    def parse_args(rest: str, escape: str) -> _Args:
        if not rest:
            raise _Error(f"{keyword} requires exactly one argument")
        return (rest,), False
    return parse_args


def _key_values(keyword: str) -> Callable[[str, str], _Args]:
    """ENV and LABEL: ``k=v ...`` (quotes kept) or the legacy ``k value with spaces``."""
    def parse_args(rest: str, escape: str) -> _Args:
        words = split_words(rest, escape)
        if not words:
            raise _Error(f"{keyword} requires at least one argument")
        if "=" not in words[0]:
            parts = _WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise _Error(f"{keyword} must have two arguments",
                             f"write {keyword} <key>=<value>")
            return (parts[0], parts[1]), False
        args: list[str] = []
        for word in words:
            key, equals, value = word.partition("=")
            if not equals:
                raise _Error(f"Syntax error - can't find = in \"{word}\". Must be of the form: "
                             "name=value", f"write {keyword} <key>=<value> ...")
            if not key:
                raise _Error(f"{keyword} names can not be blank")
            args += [key, value]
        return tuple(args), False
    return parse_args


def _whitespace_words(rest: str) -> tuple[str, ...]:
    return tuple(_WHITESPACE.split(rest)) if rest else ()


def _parse_arg(rest: str, escape: str) -> _Args:
    words = tuple(split_words(rest, escape))
    if not words:
        raise _Error("ARG requires at least one argument")
    if any(word.startswith("=") for word in words):
        raise _Error("ARG names can not be blank")
    return words, False


def _parse_from(rest: str, escape: str) -> _Args:
    words = _whitespace_words(rest)
    if len(words) == 3 and words[1].lower() == "as":
        if not re.fullmatch(r"[a-z][a-z0-9_.-]*", words[2].lower()):
            raise _Error(f'invalid name for build stage: "{words[2]}", name can\'t start with '
                         "a number or contain symbols", "use letters, digits, '-', '_', '.'")
    elif len(words) != 1:
        raise _Error("FROM requires either one or three arguments", "write FROM <image> [AS <name>]")
    return words, False


def _parse_expose(rest: str, escape: str) -> _Args:
    if not rest:
        raise _Error("EXPOSE requires at least one argument")
    return _whitespace_words(rest), False


def _parse_volume(rest: str, escape: str) -> _Args:
    words = _json_list(rest)
    volumes = tuple(word.strip() for word in words) if words is not None else (
        _whitespace_words(rest))
    if not volumes:
        raise _Error("VOLUME requires at least one argument")
    if "" in volumes:
        raise _Error("VOLUME specified can not be an empty string")
    return volumes, words is not None


def _parse_healthcheck(rest: str, escape: str) -> _Args:
    if not rest:
        raise _Error("HEALTHCHECK requires at least one argument")
    kind, _, command = re.sub(r"\s+", " ", rest, count=1).partition(" ")
    if kind.upper() == "NONE":
        if command:
            raise _Error("HEALTHCHECK NONE takes no arguments")
        return ("NONE",), False
    if kind.upper() != "CMD":
        raise _Error(f'Unknown type "{kind.upper()}" in HEALTHCHECK (try CMD)',
                     "write HEALTHCHECK [OPTIONS] CMD <command> or HEALTHCHECK NONE")
    words = _json_list(command)
    if (words is not None and not words) or not command:
        raise _Error("Missing command after HEALTHCHECK CMD")
    return ("CMD", *(words if words is not None else [command])), words is not None


def _parse_onbuild(rest: str, escape: str) -> _Args:
    if not rest:
        raise _Error("ONBUILD requires at least one argument")
    trigger = _WHITESPACE.split(rest, maxsplit=1)[0].upper()
    if trigger == "ONBUILD":
        raise _Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise _Error(f"{trigger} isn't allowed as an ONBUILD trigger")
    _instruction(rest, 0, escape)  # the trigger must be a valid instruction itself
    return (rest,), False


_PARSERS: dict[str, Callable[[str, str], _Args]] = {
    "ADD": _sources_and_dest("ADD"),
    "ARG": _parse_arg,
    "CMD": _exec_or_shell("CMD"),
    "COPY": _sources_and_dest("COPY"),
    "ENTRYPOINT": _exec_or_shell("ENTRYPOINT"),
    "ENV": _key_values("ENV"),
    "EXPOSE": _parse_expose,
    "FROM": _parse_from,
    "HEALTHCHECK": _parse_healthcheck,
    "LABEL": _key_values("LABEL"),
    "MAINTAINER": _exactly_one("MAINTAINER"),
    "ONBUILD": _parse_onbuild,
    "RUN": _exec_or_shell("RUN"),
    "SHELL": _exec_or_shell("SHELL"),
    "STOPSIGNAL": _exactly_one("STOPSIGNAL"),
    "USER": _exactly_one("USER"),
    "VOLUME": _parse_volume,
    "WORKDIR": _exactly_one("WORKDIR"),
}


# --- stages -----------------------------------------------------------------------------


def _group(instructions: list[Instruction], path: str, escape: str) -> Dockerfile:
    """Split instructions into meta ARGs (before the first FROM) and stages."""
    meta: list[Instruction] = []
    heads: list[Instruction] = []
    bodies: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            heads.append(ins)
            bodies.append([])
        elif bodies:
            bodies[-1].append(ins)
        elif ins.keyword == "ARG":
            meta.append(ins)
        else:
            raise InvalidArgument(f"{path}:{ins.line}: {ins.keyword} before the first FROM: "
                                  "no build stage in current context",
                                  "only ARG may come before FROM; start a stage with FROM <image>")
    if not heads:
        raise InvalidArgument(f"{path}:{instructions[-1].line}: no FROM instruction: "
                              "the Dockerfile has no build stage", "add FROM <image>")
    return Dockerfile(path, escape, tuple(meta), tuple(_stages(heads, bodies, path)))


def _stages(heads: list[Instruction], bodies: list[list[Instruction]],
            path: str) -> Iterator[Stage]:
    names: set[str] = set()
    for index, (head, body) in enumerate(zip(heads, bodies)):
        name = head.args[2].lower() if len(head.args) == 3 else None
        if name is not None and name in names:
            raise InvalidArgument(f'{path}:{head.line}: duplicate stage name "{name}"',
                                  "give every stage its own AS name")
        if name is not None:
            names.add(name)
        yield Stage(index, head.args[0], name, head.line, tuple(body),
                    head.flag("platform"), head.original)
