"""Properties of the build parsers: Dockerfile (and its word lexer), Procfile, bin/release.

For any input they return a value or raise ``InvalidArgument``, never another
exception; well-formed input generated from known parts parses back to those parts.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paas.build.dockerfile import KEYWORDS, parse
from paas.build.procfile import (
    PROCESSES_LABEL,
    parse_procfile,
    parse_release,
    processes_of,
)
from paas.build.shellwords import expand_word, expand_words, split_flags, split_words
from paas.errors import InvalidArgument
from paas.model import ImageConfig

from .strategies import PROPERTY, nasty_text, nasty_value

_WORD = st.sampled_from(sorted(KEYWORDS) + ["from", "Run", "#", "# escape=`", "# syntax=x",
                                             "\\", "`", "--", "--mount=type=cache", "[", "]"])


@st.composite
def dockerfile_text(draw: st.DrawFn) -> str:
    """Lines of keywords, flags, JSON-ish and random words, continuations and CRLFs."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        parts = draw(st.lists(st.one_of(_WORD, nasty_text(20)), max_size=5))
        end = draw(st.sampled_from(["", " \\", "\r", " `", "\\\\"]))
        lines.append(" ".join(parts) + end)
    prefix = draw(st.sampled_from(["", "\ufeff", "# escape=`\n", "FROM scratch\n"]))
    return prefix + "\n".join(lines)


def _parses_or_invalid(text: str) -> None:
    try:
        df = parse(text)
    except InvalidArgument as err:
        assert err.message and err.message.startswith("Dockerfile:")
        return
    assert df.stages, "a parsed Dockerfile has a stage"
    for stage in df.stages:
        for ins in stage.instructions:
            assert ins.keyword in KEYWORDS


@PROPERTY
@given(nasty_text(300))
def test_dockerfile_parser_on_any_text(text: str) -> None:
    _parses_or_invalid(text)


@PROPERTY
@given(dockerfile_text())
def test_dockerfile_parser_on_dockerfile_like_text(text: str) -> None:
    _parses_or_invalid(text)


_ARGS = st.lists(nasty_value(20), min_size=1, max_size=4)


@PROPERTY
@given(_ARGS, st.sampled_from(["RUN", "CMD", "ENTRYPOINT", "SHELL"]))
def test_json_form_arguments_come_back_exactly(args: list[str], keyword: str) -> None:
    (ins,) = parse(f"FROM scratch\n{keyword} {json.dumps(args)}\n").stages[0].instructions
    assert ins.json_form and ins.args == tuple(args)


_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@PROPERTY
@given(_NAME, nasty_value(40))
def test_env_value_in_single_quotes_expands_to_itself(name: str, value: str) -> None:
    """``ENV K='v'`` then expansion gives v back for any v without a quote or line end."""
    value = "".join(c for c in value if c not in "'\r\n\ufeff\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    (ins,) = parse(f"FROM scratch\nENV {name}='{value}'\n").stages[0].instructions
    key, raw = ins.args
    assert key == name
    assert expand_word(raw, {}) == value


_ENV = st.dictionaries(_NAME, nasty_value(10), max_size=3)


@PROPERTY
@given(nasty_text(60), _ENV, st.sampled_from(["\\", "`"]))
def test_word_lexer_on_any_text(text: str, env: dict[str, str], escape: str) -> None:
    for fn in (expand_word, expand_words):
        try:
            fn(text, env, escape)
        except InvalidArgument as err:
            assert err.message
    assert isinstance(split_words(text, escape), list)
    rest, flags = split_flags(text)
    assert isinstance(rest, str) and all(isinstance(f, str) for f in flags)


@PROPERTY
@given(st.text(st.sampled_from("${}:-+?#%/*\\'\"ab_1 "), max_size=30), _ENV)
def test_word_lexer_on_substitution_soup(text: str, env: dict[str, str]) -> None:
    try:
        expand_words(text, env)
    except InvalidArgument as err:
        assert err.message


# --- Procfile ----------------------------------------------------------------------

_PTYPE = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
_COMMAND = nasty_value(40).map(lambda s: " ".join(s.split())).filter(bool)


@PROPERTY
@given(nasty_text(200))
def test_procfile_parser_on_any_text(text: str) -> None:
    try:
        procs = parse_procfile(text)
    except InvalidArgument as err:
        assert err.message.startswith("Procfile line ")
        return
    for name, command in procs.items():
        assert name and command and "\n" not in command and "\n" not in name


@PROPERTY
@given(st.dictionaries(_PTYPE, _COMMAND, max_size=5), st.sampled_from(["\n", "\r\n"]))
def test_procfile_round_trip(procs: dict[str, str], newline: str) -> None:
    text = newline.join(f"{name}: {command}" for name, command in procs.items())
    assert parse_procfile("# comment" + newline + text + newline) == procs


@PROPERTY
@given(nasty_text(200))
def test_release_output_parser_on_any_text(text: str) -> None:
    try:
        parse_release(text)
    except InvalidArgument as err:
        assert "bin/release" in err.hint


@PROPERTY
@given(st.lists(st.tuples(_PTYPE, nasty_text(20)), max_size=4), st.sampled_from(["'", '"']))
def test_release_output_with_quoted_commands(procs: list[tuple[str, str]], quote: str) -> None:
    body = "".join(f"  {name}: {quote}{command}{quote}\n" for name, command in procs)
    try:
        parse_release("default_process_types:\n" + body)
    except InvalidArgument as err:
        assert "bin/release" in err.hint


@PROPERTY
@given(st.dictionaries(_PTYPE, _COMMAND.filter(lambda c: ":" not in c), max_size=4))
def test_release_output_round_trip(procs: dict[str, str]) -> None:
    body = "".join(f"  {name}: {json.dumps(command)}\n" for name, command in procs.items())
    assert parse_release("---\naddons: []\ndefault_process_types:\n" + body) == procs


@PROPERTY
@given(nasty_text(80))
def test_processes_label_of_any_image(label: str) -> None:
    cfg = ImageConfig(labels=((PROCESSES_LABEL, label),))
    try:
        procs = processes_of(cfg)
    except InvalidArgument as err:
        assert PROCESSES_LABEL in err.message
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in procs.items())


def test_deeply_nested_processes_label_is_invalid_not_a_crash() -> None:
    cfg = ImageConfig(labels=((PROCESSES_LABEL, "[" * 100_000 + "]" * 100_000),))
    with pytest.raises(InvalidArgument, match=PROCESSES_LABEL):
        processes_of(cfg)
