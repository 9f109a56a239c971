"""Unit tests for paas.build.shellwords: Docker's ProcessWord / ProcessWords semantics.

The tables mirror buildkit's frontend/dockerfile/shell/envVarTest and lex_test.go.
"""

from __future__ import annotations

import pytest

from paas.build.shellwords import expand_word, expand_words
from paas.errors import InvalidArgument

# buildkit's envVarTest, Unix rows: source | expected ("error" = must fail)
ENV_VAR_TEST = r"""
hello                    |     hello
he'll'o                  |     hello
he'llo                   |     error
he\'llo                  |     he'llo
he\\'llo                 |     error
abc\tdef                 |     abctdef
"abc\tdef"               |     abc\tdef
"abc\\tdef"              |     abc\tdef
'abc\tdef'               |     abc\tdef
hello\                   |     hello
hello\\                  |     hello\
"hello                   |     error
"hello\"                 |     error
"hel'lo"                 |     hel'lo
'hello                   |     error
'hello\'                 |     hello\
'hello\there'            |     hello\there
'hello\\there'           |     hello\\there
"''"                     |     ''
$.                       |     $.
$1                       |
he$1x                    |     hex
he$.x                    |     he$.x
he$pwd.                  |     he.
he$PWD                   |     he/home
he\$PWD                  |     he$PWD
he\\$PWD                 |     he\/home
"he\$PWD"                |     he$PWD
"he\\$PWD"               |     he\/home
\${}                     |     ${}
\${}aaa                  |     ${}aaa
he\${}                   |     he${}
he\${}xx                 |     he${}xx
${}                      |     error
${}aaa                   |     error
he${}                    |     error
he${}xx                  |     error
he${hi}                  |     he
he${hi}xx                |     hexx
he${PWD}                 |     he/home
he${.}                   |     error
he${XXX:-000}xx          |     he000xx
he${PWD:-000}xx          |     he/homexx
he${XXX:-$PWD}xx         |     he/homexx
he${XXX:-${PWD:-yyy}}xx  |     he/homexx
he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
he${XXX:YYY}             |     error
he${XXX:+${PWD}}xx       |     hexx
he${PWD:+${XXX}}xx       |     hexx
he${PWD:+${SHELL}}xx     |     hebashxx
he${XXX:+000}xx          |     hexx
he${PWD:+000}xx          |     he000xx
'he${XX}'                |     he${XX}
"he${PWD}"               |     he/home
"he'$PWD'"               |     he'/home'
"$PWD"                   |     /home
'$PWD'                   |     $PWD
'\$PWD'                  |     \$PWD
'"hello"'                |     "hello"
'he\$PWD'                |     he\$PWD
he${PWD                  |     error
he${PWD:=000}xx          |     error
he${PWD:+${PWD}:}xx      |     he/home:xx
he${XXX:-\$PWD:}xx       |     he$PWD:xx
he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
안녕하세요                 |     안녕하세요
안'녕'하세요               |     안녕하세요
안'녕하세요                |     error
안녕\'하세요               |     안녕'하세요
안\\'녕하세요              |     error
안녕\t하세요               |     안녕t하세요
"안녕\t하세요"             |     안녕\t하세요
안녕$1x                    |     안녕x
안녕${XXX:-${YYY:-yyy}}xx  |     안녕yyyxx
$KOREAN                    |     한국어
안녕$KOREAN                |     안녕한국어
${{aaa}                   |     error
${aaa}}                   |     }
${aaa                     |     error
${{aaa:-bbb}              |     error
${aaa:-bbb}}              |     bbb}
${aaa:-bbb                |     error
${aaa:-bbb}               |     bbb
${aaa:-${bbb:-ccc}}       |     ccc
${aaa:-bbb ${foo}         |     error
${aaa:-bbb {foo}          |     bbb {foo
${:}                      |     error
${:-bbb}                  |     error
${:+bbb}                  |     error
"""

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _rows() -> list[tuple[str, str]]:
    rows = []
    for line in ENV_VAR_TEST.strip().splitlines():
        source, expected = line.split("|")
        rows.append((source.strip(), expected.strip()))
    return rows


@pytest.mark.parametrize(("source", "expected"), _rows())
def test_env_var_table(source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(InvalidArgument):
            expand_word(source, ENV)
    else:
        assert expand_word(source, ENV) == expected


@pytest.mark.parametrize(("source", "env", "expected"), [
    ("x", {"DUMMY": "dummy"}, "x"),
    ("x ${UNUSED}", {}, "x "),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
    ("${FOO:-}", {"FOO": "xxx"}, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
    ("${FOO?aaa}", {"FOO": "xxx"}, "xxx"),
    ("${BAR?bbb}", {"BAR": ""}, ""),
    ("${FOO:?aaa}", {"FOO": "xxx"}, "xxx"),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO%y}", {"FOO": "xxyy"}, "xxy"),
    ("${FOO%%y*}", {"FOO": "xxyy"}, "xx"),
    ("${FOO%y*}", {"FOO": "xxyy"}, "xxy"),
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
     {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"}, "/foo.*/*.txt - /foo..*.txt"),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
     {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"}, "/tmp/bar.txt - /bar.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
     "/foo/b/c.txt - /foo/c.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT}",
     {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
     "https://google.de"),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
    ("${FOO//*/R}", {"FOO": "abc"}, "R"),
    ("${FOO//x*/-}", {"FOO": "abxd"}, "ab-"),
    ("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
     {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
     "something-v1.2.3.linux-arm-v7.tar.gz"),
    ("${VAR:?message here$ARG}", {"VAR": "plain", "ARG": "x"}, "plain"),
    ("${VAR?message here$ARG}", {"VAR": "", "ARG": "x"}, ""),
])
def test_process_with_matches(source: str, env: dict[str, str], expected: str) -> None:
    assert expand_word(source, env) == expected


@pytest.mark.parametrize(("source", "env"), [
    ("${BAZ?ccc}", {}),
    ("${BAR:?bbb}", {"BAR": ""}),
    ("${BAZ:?ccc}", {}),
    ("${BAZ:?}", {}),
    ("${FOO=aaa}", {"FOO": "xxx"}),
    ("${FOO=:aaa}", {"FOO": "xxx"}),
    ("${FOO=}", {}),
    ("${FOO//ww}", {"FOO": "xxyy"}),
    ("${FOO//}", {"FOO": "xxyy"}),
    ("${FOO#\\x}", {"FOO": "x"}),
    ("${#FOO}", {"FOO": "x"}),
])
def test_process_errors(source: str, env: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        expand_word(source, env)


def test_mandatory_variable_messages() -> None:
    with pytest.raises(InvalidArgument, match="VAR: message herex") as err:
        expand_word("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"})
    assert "VAR" in err.value.hint
    with pytest.raises(InvalidArgument, match="VAR: message herex"):
        expand_word("${VAR?message here$ARG}", {"ARG": "x"})
    with pytest.raises(InvalidArgument, match="VAR: is not allowed to be unset"):
        expand_word("${VAR?}", {})
    with pytest.raises(InvalidArgument, match="VAR: is not allowed to be empty"):
        expand_word("${VAR:?}", {"VAR": ""})


def test_syntax_error_messages() -> None:
    with pytest.raises(InvalidArgument, match=r"failed to process \"he\$\{PWD\": "
                                              r"syntax error: missing '}'"):
        expand_word("he${PWD", ENV)
    with pytest.raises(InvalidArgument, match="bad substitution"):
        expand_word("${}", ENV)
    with pytest.raises(InvalidArgument, match="matching single-quote"):
        expand_word("'abc", ENV)
    with pytest.raises(InvalidArgument, match="matching double-quote"):
        expand_word('"abc', ENV)
    with pytest.raises(InvalidArgument, match=r"unsupported modifier \(:=\)"):
        expand_word("${A:=b}", ENV)


def test_special_and_numeric_parameters() -> None:
    assert expand_word("a$$b", {}) == "ab"
    assert expand_word("$0", {"0": "zero"}) == "zero"
    assert expand_word("$12x", {"12": "twelve"}) == "twelvex"
    assert expand_word("$@-", {}) == "-"
    assert expand_word("a$", {}) == "a$"
    assert expand_word("$ b", {}) == "$ b"
    assert expand_word("$_x1", {"_x1": "v"}) == "v"


def test_variable_names_are_case_sensitive() -> None:
    assert expand_word("$foo-$FOO", {"FOO": "up"}) == "-up"


def test_backtick_escape() -> None:
    env = {"PWD": "/home"}
    assert expand_word(r"C:\path\to", env, escape="`") == r"C:\path\to"
    assert expand_word(r"he\$PWD", env, escape="`") == r"he\/home"
    assert expand_word("he`$PWD", env, escape="`") == "he$PWD"
    assert expand_word('"a`"b"', env, escape="`") == 'a"b'
    assert expand_word('"a\\b"', env, escape="`") == "a\\b"
    assert expand_words("a` b c", env, escape="`") == ["a b", "c"]


def test_invalid_escape_character() -> None:
    with pytest.raises(InvalidArgument):
        expand_word("x", {}, escape="/")


@pytest.mark.parametrize(("source", "env", "expected"), [
    ("hello", {}, ["hello"]),
    ("hello world", {}, ["hello", "world"]),
    ("  hello   world  ", {}, ["hello", "world"]),
    ('"hello world"', {}, ["hello world"]),
    ("'hello world'", {}, ["hello world"]),
    ("hello\\ world", {}, ["hello world"]),
    ('a "" b', {}, ["a", "b"]),
    ("$X", {"X": "80/tcp 443"}, ["80/tcp", "443"]),
    ('"$X"', {"X": "a b"}, ["a b"]),
    ("pre$X", {"X": "a b"}, ["prea", "b"]),
    ("${X:-a b} c", {}, ["a", "b", "c"]),
    ("$EMPTY", {}, []),
    ('"a b"c d', {}, ["a bc", "d"]),
    ("'a'\"b\"c", {}, ["abc"]),
    ("a\tb\nc", {}, ["a", "b", "c"]),
])
def test_expand_words(source: str, env: dict[str, str], expected: list[str]) -> None:
    assert expand_words(source, env) == expected


def test_expand_words_errors() -> None:
    with pytest.raises(InvalidArgument):
        expand_words("'unterminated", {})


def test_whitespace_kept_by_expand_word() -> None:
    assert expand_word("  a  b ", {}) == "  a  b "
    assert expand_word("$X", {"X": " a  b "}) == " a  b "
