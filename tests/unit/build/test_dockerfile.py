"""Unit tests for paas.build.dockerfile: buildkit's Dockerfile parsing rules.

Lexical layer (directives, comments, continuations, BOM, CRLF), every instruction's
argument shape, JSON vs shell form, flags, stages and errors with ``path:line``.
"""

from __future__ import annotations

import pytest

from paas.build.dockerfile import Dockerfile, Instruction, parse
from paas.build.shellwords import expand_word, split_flags, split_words
from paas.errors import InvalidArgument


def body(text: str) -> tuple[Instruction, ...]:
    """The instructions of the only stage of ``FROM scratch`` + text."""
    return parse("FROM scratch\n" + text).stages[0].instructions


def one(text: str) -> Instruction:
    (ins,) = body(text)
    return ins


def error(text: str, path: str = "Dockerfile") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        parse(text, path)
    return err.value


# --- lines ------------------------------------------------------------------------------


def test_simple_dockerfile() -> None:
    df = parse("FROM debian:12\nRUN apt-get update\nCMD [\"python\", \"app.py\"]\n")
    assert isinstance(df, Dockerfile)
    assert df.path == "Dockerfile" and df.escape == "\\" and df.meta_args == ()
    (stage,) = df.stages
    assert (stage.index, stage.base, stage.name, stage.line) == (0, "debian:12", None, 1)
    assert stage.original == "FROM debian:12"
    run, cmd = stage.instructions
    assert run == Instruction("RUN", ("apt-get update",), False, (), 2, "RUN apt-get update")
    assert cmd.args == ("python", "app.py") and cmd.json_form and cmd.line == 3


def test_keywords_are_case_insensitive() -> None:
    df = parse("from alpine AS Build\nrun echo hi\nCmd [\"x\"]\n")
    assert df.stages[0].name == "build"
    assert [i.keyword for i in df.stages[0].instructions] == ["RUN", "CMD"]


def test_comments_and_blank_lines_are_skipped() -> None:
    df = parse("# a comment\n\n   # indented comment\nFROM a\n\n\t\nRUN x # not a comment\n")
    (run,) = df.stages[0].instructions
    assert run.args == ("x # not a comment",)
    assert run.line == 7


def test_line_continuation_joins_lines_as_docker_does() -> None:
    run = one("RUN apt-get update && \\\n    apt-get install -y curl\n")
    assert run.args == ("apt-get update &&     apt-get install -y curl",)
    assert run.line == 2
    assert run.original == "RUN apt-get update &&     apt-get install -y curl"


def test_continuation_allows_trailing_whitespace_after_escape() -> None:
    assert one("RUN a \\  \t\nb\n").args == ("a b",)


def test_comments_and_empty_lines_inside_a_continuation_are_dropped() -> None:
    text = "RUN a \\\n# comment\n    # indented comment\n\n   \\\n  b \\\n\nc\n"
    run = one(text)
    # "   \\" keeps the spaces before the escape; continuation lines keep their indent
    assert run.args == ("a      b c",)
    assert run.line == 2


def test_escaped_escape_at_end_of_line_is_not_a_continuation() -> None:
    ins = body("RUN echo a\\\\\nRUN echo b\n")
    assert [i.args for i in ins] == [("echo a\\\\",), ("echo b",)]


def test_continuation_at_end_of_file() -> None:
    assert one("RUN echo hi \\").args == ("echo hi",)


def test_line_numbers_count_continuations() -> None:
    ins = body("RUN a \\\n b \\\n c\nUSER app\n")
    assert [i.line for i in ins] == [2, 5]


def test_crlf_line_endings() -> None:
    df = parse("FROM a\r\nRUN one \\\r\n  two\r\nENV A=b\r\n")
    run, env = df.stages[0].instructions
    assert run.args == ("one   two",)
    assert env.args == ("A", "b")


def test_utf8_bom_is_stripped() -> None:
    df = parse("\ufeff# escape=`\nFROM a\nRUN x `\n y\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == ("x  y",)


# --- directives -------------------------------------------------------------------------


def test_escape_directive_backtick_windows_paths() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n  /s\n"
    df = parse(text)
    assert df.escape == "`"
    copy, run = df.stages[0].instructions
    assert copy.args == ("testfile.txt", "c:\\")
    assert run.args == ("dir c:\\   /s",)
    assert run.line == 4


def test_backslash_at_end_continues_without_escape_directive() -> None:
    df = parse("FROM w\nCOPY a c:\\\nRUN dir\n")
    (copy,) = df.stages[0].instructions
    assert copy.args == ("a", "c:RUN", "dir")


def test_directives_are_case_insensitive_and_tolerate_spaces() -> None:
    assert parse("#  ESCAPE  =  `  \nFROM a\n").escape == "`"
    assert parse("#escape=\\\nFROM a\n").escape == "\\"


def test_syntax_and_check_directives_are_accepted_and_ignored() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a\n")
    assert df.escape == "`"


def test_directive_after_comment_is_a_comment() -> None:
    assert parse("# hello\n# escape=`\nFROM a\n").escape == "\\"


def test_directive_after_blank_line_or_instruction_is_a_comment() -> None:
    assert parse("\n# escape=`\nFROM a\n").escape == "\\"
    assert parse("FROM a\n# escape=`\nRUN x \\\n y\n").escape == "\\"


def test_unknown_directive_ends_directives() -> None:
    assert parse("# foo=bar\n# escape=`\nFROM a\n").escape == "\\"


def test_duplicate_directive_is_an_error() -> None:
    err = error("# escape=`\n# ESCAPE=\\\nFROM a\n")
    assert err.message == "Dockerfile:2: only one escape parser directive can be used"
    assert "only one syntax" in error("# syntax=a\n# syntax=b\nFROM a\n").message


def test_invalid_escape_value() -> None:
    err = error("# escape=x\nFROM a\n")
    assert err.message.startswith("Dockerfile:1: invalid escape token 'x'")


# --- JSON and shell forms ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "args", "json_form"), [
    ('CMD ["a", "b c"]', ("a", "b c"), True),
    ("CMD [\"a\", 'b']", ("[\"a\", 'b']",), False),
    ("CMD ['a']", ("['a']",), False),
    ('CMD ["a" "b"]', ('["a" "b"]',), False),
    ('CMD ["unterminated"', ('["unterminated"',), False),
    ('CMD ["a"] extra', ('["a"] extra',), False),
    ('CMD   ["a"]   ', ("a",), True),
    ('CMD ["\\u00e9", "a\\"b"]', ("é", 'a"b'), True),
    ("CMD []", (), True),
    ("ENTRYPOINT []", (), True),
    ("CMD echo $HOME 'x y'", ("echo $HOME 'x y'",), False),
    ('ENTRYPOINT ["/bin/sh", "-c"]', ("/bin/sh", "-c"), True),
    ("ENTRYPOINT exec gunicorn app", ("exec gunicorn app",), False),
    ('RUN ["echo", "hi"]', ("echo", "hi"), True),
    ('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', ("/bin/bash", "-o", "pipefail", "-c"), True),
])
def test_exec_and_shell_forms(text: str, args: tuple[str, ...], json_form: bool) -> None:
    ins = one(text)
    assert (ins.args, ins.json_form) == (args, json_form)


def test_json_array_of_non_strings_is_an_error_as_in_docker() -> None:
    err = error("FROM a\nCMD [1, 2]\n")
    assert err.message == ("Dockerfile:2: when using JSON array syntax, arrays must be "
                           "comprised of strings only")


def test_shell_requires_json() -> None:
    err = error("FROM a\nSHELL /bin/bash -c\n")
    assert err.message == "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    assert "at least one" in error("FROM a\nSHELL []\n").message


@pytest.mark.parametrize("keyword", ["RUN", "CMD", "ENTRYPOINT"])
def test_empty_command_is_an_error(keyword: str) -> None:
    err = error(f"FROM a\n{keyword}\n")
    assert err.message == f"Dockerfile:2: {keyword} requires at least one argument"


def test_empty_json_run_is_an_error() -> None:
    assert "RUN requires at least one argument" in error("FROM a\nRUN []\n").message


# --- flags ------------------------------------------------------------------------------


def test_run_flags() -> None:
    run = one("RUN --mount=type=cache,target=/root/.cache --network=none pip install x")
    assert run.flags == (("mount", "type=cache,target=/root/.cache"), ("network", "none"))
    assert run.args == ("pip install x",)
    assert run.flag("network") == "none" and run.flag("security") is None


def test_repeatable_flags() -> None:
    run = one("RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b true")
    assert run.flag_values("mount") == ("type=cache,target=/a", "type=tmpfs,target=/b")
    assert run.flag("mount") == "type=tmpfs,target=/b"


def test_copy_flags() -> None:
    copy = one('COPY --from=builder --chown=app:app --chmod=644 --link --exclude=*.pyc '
               '--parents a b /dst/')
    assert copy.flags == (("from", "builder"), ("chown", "app:app"), ("chmod", "644"),
                          ("link", ""), ("exclude", "*.pyc"), ("parents", ""))
    assert copy.args == ("a", "b", "/dst/")
    assert copy.flag("link") == "" and copy.flag("from") == "builder"


def test_flag_values_may_be_quoted() -> None:
    copy = one('COPY --chown="app user" a b')
    assert copy.flag("chown") == "app user"


def test_double_dash_ends_flags() -> None:
    assert one("RUN -- --version").args == ("--version",)


def test_single_dash_is_not_a_flag() -> None:
    assert one("RUN -x").args == ("-x",)


def test_add_flags() -> None:
    add = one("ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tar /y")
    assert add.flags == (("checksum", "sha256:abc"), ("keep-git-dir", "true"))


@pytest.mark.parametrize(("text", "message"), [
    ("COPY --nope=1 a b", "Unknown flag: nope"),
    ("ENV --foo=bar A=b", "Unknown flag: foo"),
    ("COPY --from=a --from=b a b", "Duplicate flag specified: from"),
    ("COPY --from a b", "Missing a value on flag: from"),
    ("COPY --link=maybe a b", "Expecting boolean value for flag link, not: maybe"),
    ("HEALTHCHECK --interval=5 CMD true", 'time: invalid duration "5" in --interval'),
    ("HEALTHCHECK --retries=-1 CMD true", "--retries must be a whole number"),
])
def test_flag_errors(text: str, message: str) -> None:
    err = error("FROM a\n" + text)
    assert err.message.startswith("Dockerfile:2: " + message)


# --- ENV, LABEL, ARG --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "args"), [
    ("ENV A=b", ("A", "b")),
    ("ENV A=b C=d", ("A", "b", "C", "d")),
    ('ENV A="hello world" B=\'x y\'', ("A", '"hello world"', "B", "'x y'")),
    ("ENV A=hello\\ world", ("A", "hello\\ world")),
    ('ENV A="a \\" b"', ("A", '"a \\" b"')),
    ("ENV A=", ("A", "")),
    ('ENV A=""', ("A", '""')),
    ("ENV A=x=y", ("A", "x=y")),
    ("ENV A=$B", ("A", "$B")),
    ("ENV A=b \\\n    C=d", ("A", "b", "C", "d")),
    ("ENV KEY some value", ("KEY", "some value")),
    ("ENV KEY   some   value  ", ("KEY", "some   value")),
    ('ENV KEY "quoted value"', ("KEY", '"quoted value"')),
    ("ENV KEY=", ("KEY", "")),
    ('LABEL version="1.0" description="a b"', ("version", '"1.0"', "description", '"a b"')),
    ('LABEL "com.example.vendor"="ACME Inc"', ('"com.example.vendor"', '"ACME Inc"')),
    ("LABEL maintainer someone", ("maintainer", "someone")),
])
def test_key_value_forms(text: str, args: tuple[str, ...]) -> None:
    assert one(text).args == args


def test_env_values_expand_to_docker_results() -> None:
    env = one('ENV A="hello world" B=hello\\ world C=\'$X\' D="$X"')
    values = [expand_word(value, {"X": "x"}) for value in env.args[1::2]]
    assert values == ["hello world", "hello world", "$X", "x"]


def test_backtick_escape_in_env() -> None:
    df = parse("# escape=`\nFROM a\nENV A=c:\\dir B=x` y\n")
    env = df.stages[0].instructions[0]
    assert env.args == ("A", "c:\\dir", "B", "x` y")
    assert expand_word(env.args[1], {}, "`") == "c:\\dir"
    assert expand_word(env.args[3], {}, "`") == "x y"


@pytest.mark.parametrize(("text", "message"), [
    ("ENV KEY", "ENV must have two arguments"),
    ("ENV", "ENV requires at least one argument"),
    ("ENV A=b C", "Syntax error - can't find = in \"C\". Must be of the form: name=value"),
    ("ENV =b", "ENV names can not be blank"),
    ("LABEL", "LABEL requires at least one argument"),
    ("LABEL KEY", "LABEL must have two arguments"),
    ("ARG", "ARG requires at least one argument"),
    ("ARG =x", "ARG names can not be blank"),
])
def test_key_value_errors(text: str, message: str) -> None:
    assert error("FROM a\n" + text).message == "Dockerfile:2: " + message


def test_arg_forms() -> None:
    assert one("ARG NAME").args == ("NAME",)
    assert one("ARG NAME=default").args == ("NAME=default",)
    assert one('ARG A B=1 C="x y"').args == ("A", "B=1", 'C="x y"')


# --- other instructions -----------------------------------------------------------------


def test_copy_and_add_arguments() -> None:
    assert one("COPY . /app").args == (".", "/app")
    assert one("COPY a  b\tc /d/").args == ("a", "b", "c", "/d/")
    copy = one('COPY ["my file", "/dst dir/"]')
    assert copy.args == ("my file", "/dst dir/") and copy.json_form
    assert one("COPY 'a b' c").args == ("'a", "b'", "c")
    assert one("ADD https://example.com/x.tgz /opt/").args == ("https://example.com/x.tgz", "/opt/")


@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_copy_needs_two_arguments(keyword: str) -> None:
    for text in (f"{keyword} onlyone", f"{keyword}", f'{keyword} ["one"]'):
        message = error("FROM a\n" + text).message
        assert message.startswith(f"Dockerfile:2: {keyword} requires at least two arguments")


@pytest.mark.parametrize("keyword", ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"])
def test_single_value_instructions(keyword: str) -> None:
    assert one(f"{keyword}   some value  ").args == ("some value",)
    err = error(f"FROM a\n{keyword}\n")
    assert err.message == f"Dockerfile:2: {keyword} requires exactly one argument"


def test_expose_and_volume() -> None:
    assert one("EXPOSE 80 443/tcp  $PORT").args == ("80", "443/tcp", "$PORT")
    assert one("VOLUME /data /logs").args == ("/data", "/logs")
    volume = one('VOLUME ["/data", " /logs "]')
    assert volume.args == ("/data", "/logs") and volume.json_form
    assert error("FROM a\nEXPOSE\n").message == "Dockerfile:2: EXPOSE requires at least one argument"
    assert "VOLUME requires at least one" in error("FROM a\nVOLUME\n").message
    assert "empty string" in error('FROM a\nVOLUME [""]\n').message


def test_healthcheck_forms() -> None:
    health = one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms "
                 "--start-interval=1.5s --retries=3 CMD curl -f http://localhost/ || exit 1")
    assert health.args == ("CMD", "curl -f http://localhost/ || exit 1")
    assert not health.json_form
    assert health.flag("interval") == "30s" and health.flag("retries") == "3"
    exec_form = one('HEALTHCHECK cmd ["curl", "-f", "http://localhost/"]')
    assert exec_form.args == ("CMD", "curl", "-f", "http://localhost/")
    assert exec_form.json_form
    assert one("HEALTHCHECK NONE").args == ("NONE",)
    assert one("HEALTHCHECK none").args == ("NONE",)


@pytest.mark.parametrize(("text", "message"), [
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK curl x", 'Unknown type "CURL" in HEALTHCHECK (try CMD)'),
])
def test_healthcheck_errors(text: str, message: str) -> None:
    assert error("FROM a\n" + text).message == "Dockerfile:2: " + message


def test_onbuild() -> None:
    ins = one("ONBUILD RUN echo hi")
    assert ins.args == ("RUN echo hi",)
    assert one("onbuild copy --chown=a . /app").args == ("copy --chown=a . /app",)


@pytest.mark.parametrize(("text", "message"), [
    ("ONBUILD", "ONBUILD requires at least one argument"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ("ONBUILD maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("ONBUILD FOO x", "unknown instruction: FOO"),
    ("ONBUILD COPY onlyone", "COPY requires at least two arguments"),
])
def test_onbuild_errors(text: str, message: str) -> None:
    assert error("FROM a\n" + text).message.startswith("Dockerfile:2: " + message)


@pytest.mark.parametrize("text", [
    "RUN <<EOF\necho hi\nEOF",
    "RUN cat <<-EOT > /x",
    "RUN python3 <<'PY'",
    "COPY <<EOF /etc/x",
    "ADD <<EOF /etc/x",
    "RUN 3<<EOF cat",
    "ONBUILD RUN <<EOF",
])
def test_heredocs_are_refused(text: str) -> None:
    err = error("FROM a\n" + text)
    assert err.message.startswith("Dockerfile:2: heredocs are not supported")


@pytest.mark.parametrize("text", [
    'RUN echo "a <<b"',
    "RUN echo $((1<<2))",
    "RUN cat <<< word",
    "RUN x << EOF",
    'RUN ["cat", "<<EOF"]',
])
def test_not_heredocs(text: str) -> None:
    assert one(text).keyword == "RUN"


# --- stages -----------------------------------------------------------------------------


MULTI = """\
ARG BASE=python:3.11
ARG VERSION
FROM --platform=$BUILDPLATFORM ${BASE} AS Builder
RUN make
FROM debian:12 as runtime
COPY --from=builder /out /app
FROM runtime
"""


def test_multi_stage() -> None:
    df = parse(MULTI)
    assert [a.args for a in df.meta_args] == [("BASE=python:3.11",), ("VERSION",)]
    builder, runtime, last = df.stages
    assert (builder.index, builder.base, builder.name, builder.line) == (0, "${BASE}", "builder", 3)
    assert builder.platform == "$BUILDPLATFORM"
    assert builder.original == "FROM --platform=$BUILDPLATFORM ${BASE} AS Builder"
    assert [i.keyword for i in builder.instructions] == ["RUN"]
    assert (runtime.name, runtime.platform, runtime.line) == ("runtime", None, 5)
    assert runtime.instructions[0].flag("from") == "builder"
    assert (last.base, last.name, last.instructions) == ("runtime", None, ())


@pytest.mark.parametrize(("wanted", "index"), [
    ("builder", 0), ("BUILDER", 0), ("Runtime", 1), ("0", 0), ("2", 2),
    ("3", None), ("nope", None), ("-1", None), ("debian:12", None), ("", None),
])
def test_stage_index(wanted: str, index: int | None) -> None:
    assert parse(MULTI).stage_index(wanted) == index


def test_from_errors() -> None:
    assert error("FROM\n").message == "Dockerfile:1: FROM requires either one or three arguments"
    assert "one or three" in error("FROM a AS\n").message
    assert "one or three" in error("FROM a b c\n").message
    assert "one or three" in error("FROM a AS b c\n").message
    err = error("FROM a AS 1st\n")
    assert err.message.startswith('Dockerfile:1: invalid name for build stage: "1st"')
    assert "invalid name" in error("FROM a AS b/c\n").message


def test_duplicate_stage_name() -> None:
    err = error("FROM a AS x\nFROM b AS X\n")
    assert err.message == 'Dockerfile:2: duplicate stage name "x"'


def test_instruction_before_from() -> None:
    err = error("ARG X\nRUN echo\nFROM a\n")
    assert err.message.startswith("Dockerfile:2: RUN before the first FROM")


def test_no_from() -> None:
    err = error("ARG X\n\nARG Y\n")
    assert err.message.startswith("Dockerfile:3: no FROM instruction")


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "\ufeff", "  \\\n"])
def test_empty_dockerfile(text: str) -> None:
    err = error(text)
    assert "the Dockerfile is empty" in err.message
    assert err.message.startswith("Dockerfile:")


def test_unknown_instruction() -> None:
    err = error("FROM a\nRUN x\nFOO bar\n", path="app/Dockerfile.web")
    assert err.message == "app/Dockerfile.web:3: unknown instruction: FOO"
    assert err.hint == ("see https://docs.docker.com/reference/dockerfile/ for the "
                        "instructions paas supports")
    assert error("FROM a\nRUN x\nFOO\n").message == "Dockerfile:3: unknown instruction: FOO"


def test_continuation_can_split_a_keyword() -> None:
    assert one("RU\\\nN x").args == ("x",)


def test_error_line_is_where_the_instruction_starts() -> None:
    err = error("FROM a\n\nCOPY \\\n  onlyone\n")
    assert err.message.startswith("Dockerfile:3: COPY requires at least two arguments")


# --- parse-time splitters ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "words"), [
    ("a b  c", ["a", "b", "c"]),
    ('a="b c" d', ['a="b c"', "d"]),
    ("a='b \\' c", ["a='b \\'", "c"]),
    ('a="b \\" c" d', ['a="b \\" c"', "d"]),
    ("a\\ b c", ["a\\ b", "c"]),
    ('a="" b', ['a=""', "b"]),
    ('""', ['""']),
    ("a\\", ["a"]),
    ("", []),
])
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text, "\\") == words


@pytest.mark.parametrize(("text", "rest", "flags"), [
    ("--from=a src dst", "src dst", ["--from=a"]),
    ("  --a=1   --b  x y", "x y", ["--a=1", "--b"]),
    ('--x="a b" y', "y", ["--x=a b"]),
    ("--x=a\\ b y", "y", ["--x=a b"]),
    ("-- --x", " --x", []),
    ("--x", "", ["--x"]),
    ("-x y", "-x y", []),
    ("no flags", "no flags", []),
])
def test_split_flags(text: str, rest: str, flags: list[str]) -> None:
    assert split_flags(text) == (rest, flags)
