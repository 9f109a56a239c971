"""Docker's word processing for Dockerfile arguments: quotes, escapes and ``$VAR`` expansion.

A port of buildkit's ``frontend/dockerfile/shell/lex.go`` (``ProcessWord`` and
``ProcessWords``): single quotes are literal; double quotes let the escape character
escape only ``"``, ``$`` and itself; outside quotes the escape character (``\\`` or,
with ``# escape=```, the backtick) escapes anything. Expansions: ``$VAR``, ``${VAR}``,
``${VAR:-w}`` ``${VAR-w}`` ``${VAR:+w}`` ``${VAR+w}`` ``${VAR:?msg}`` ``${VAR?msg}``,
``${VAR%pat}`` ``${VAR%%pat}`` ``${VAR#pat}`` ``${VAR##pat}`` (``*`` and ``?``
wildcards, no bracket expressions) and ``${VAR/pat/repl}`` ``${VAR//pat/repl}``.
Unset variables expand to ``""``; ``$`` before a non-name character stays literal.

Also the parse-time splitters the Dockerfile parser uses before any expansion:
:func:`split_words` (buildkit's parseWords: whitespace split keeping quotes and
escapes, for ENV/LABEL/ARG) and :func:`split_flags` (extractBuilderFlags).

Not here: ``${#VAR}`` and other bash-only forms (an error, as in Docker), command
substitution, globbing, deciding which instructions are expanded (the builder does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import InvalidArgument

__all__ = ["expand_word", "expand_words", "split_flags", "split_words"]

_EOF = ""
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_HINT = "check the quotes and ${...} syntax of the Dockerfile argument"


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with quotes removed, escapes applied and variables expanded (one string)."""
    return _Lexer(word, env, escape).run()[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` expanded like :func:`expand_word`, then split on unquoted whitespace.

    Whitespace inside quotes or escaped stays in the word; whitespace coming from an
    unquoted ``$VAR`` splits. As in Docker, an empty quoted word (``""``) yields no word.
    """
    return _Lexer(text, env, escape).run()[1]


def split_words(text: str, escape: str) -> list[str]:
    """Whitespace-separated words keeping quotes and escapes (buildkit's parseWords)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    pos = 0
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not quote and ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok = [], False
            continue
        if ch == escape and quote != "'":
            if pos == len(text):
                break  # an escape at the very end is dropped
            word.append(ch)
            ch = text[pos]
            pos += 1
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in ("'", '"'):
            quote, blank_ok = ch, True
        word.append(ch)
    if blank_ok or word:
        words.append("".join(word))
    return words


def split_flags(text: str) -> tuple[str, list[str]]:
    """Split leading ``--flag[=value]`` words off ``text`` (buildkit's extractBuilderFlags).

    Quotes and backslashes inside flags are processed (always ``\\``, whatever the
    escape directive says, as in Docker); a bare ``--`` ends the flags.
    """
    words: list[str] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith("--", pos):
            return text[pos:], words
        word: list[str] = []
        quote = ""
        blank_ok = False
        while pos < len(text) and (quote or not text[pos].isspace()):
            ch = text[pos]
            pos += 1
            if ch == quote:
                quote = ""
            elif not quote and ch in ("'", '"'):
                quote, blank_ok = ch, True
            elif ch == "\\":
                if pos < len(text):
                    word.append(text[pos])
                    pos += 1
            else:
                word.append(ch)
        flag = "".join(word)
        if flag == "--":
            return text[pos:], words
        if blank_ok or flag:
            words.append(flag)


class _LexError(Exception):
    def __init__(self, detail: str, hint: str = _HINT) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class _Words:
    """Accumulates the whitespace-split words of ProcessWords."""

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    """One pass over one word; ``pos`` indexes code points of ``text``."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        if escape not in ("\\", "`"):
            raise InvalidArgument(f"invalid escape character {escape!r}", "use '\\' or '`'")
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_escapes = False

    def run(self) -> tuple[str, list[str]]:
        try:
            return self.until(_EOF, raw_escapes=False)
        except _LexError as err:
            raise InvalidArgument(f'failed to process "{self.text}": {err.detail}',
                                  err.hint) from None

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to and including ``stop`` (``_EOF``: the end); raw_escapes keeps escapes."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) != _EOF:
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$":
                value = self.dollar()
                words.add_string(value)
            elif ch in ("'", '"'):
                value = self.single_quoted() if ch == "'" else self.double_quoted()
                words.add_raw(value)
            else:
                value = self.next()
                if value == self.escape:
                    if self.raw_escapes:
                        words.add_raw(value)
                        result.append(value)
                    value = self.next()
                    if value == _EOF:  # an escape at the very end is dropped
                        break
                    words.add_raw(value)
                else:
                    words.add_char(value)
            result.append(value)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quoted(self) -> str:
        self.next()
        result: list[str] = []
        while (ch := self.next()) != "'":
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching "
                                "single-quote")
            result.append(ch)
        return "".join(result)

    def double_quoted(self) -> str:
        self.next()
        result: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching "
                                "double-quote")
            if ch == '"':
                self.next()
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    result.append(ch)
                if self.peek() == _EOF:
                    continue
                if self.peek() in ('"', "$", self.escape):
                    ch = self.next()
            result.append(ch)

    def name(self) -> str:
        """A variable name: letters, digits and '_', or all digits, or one special parameter."""
        name: list[str] = []
        while (ch := self.peek()) != _EOF:
            if not name and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    name.append(self.next())
                break
            if not name and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self.next())
        return "".join(name)

    def lookup(self, name: str) -> tuple[str, bool]:
        return (self.env[name], True) if name in self.env else ("", False)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if self.peek() == _EOF:
            raise _LexError("syntax error: missing '}'")
        if self.peek() in ("{", "}", ":"):
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if ch == ":":
            modifier = self.next()
            return self.modified(name, modifier, ":" + modifier, null_is_unset=True)
        if ch in ("+", "-", "?", "#", "%"):
            return self.modified(name, ch, ch, null_is_unset=False)
        if ch == "/":
            return self.replaced(name)
        if ch == _EOF:
            raise _LexError("syntax error: missing '}'")
        raise _LexError(f"unsupported modifier ({ch}) in substitution")

    def closing(self, stop: str, missing: str, raw_escapes: bool) -> str:
        """The text up to ``stop``; running out of input is a missing ``stop``."""
        try:
            return self.until(stop, raw_escapes)[0]
        except _LexError:
            if self.peek() == _EOF:
                raise _LexError(f"syntax error: missing {missing}") from None
            raise

    def modified(self, name: str, ch: str, modifier: str, null_is_unset: bool) -> str:
        word = self.closing("}", "'}'", raw_escapes=ch in ("#", "%"))
        value, is_set = self.lookup(name)
        unset = not is_set or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if unset:
                default = "is not allowed to be unset" if not is_set else "is not allowed to be empty"
                raise _LexError(f"{name}: {word or default}",
                                f"set {name} with ARG or ENV, or pass it as a build argument")
            return value
        if ch in ("#", "%"):
            greedy = word.startswith(ch)
            pattern = word[1:] if greedy else word
            if ch == "#":
                return _trim_prefix(pattern, value, greedy)
            return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
        raise _LexError(f"unsupported modifier ({modifier}) in substitution")

    def replaced(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self.closing("/", "'/' in ${}", raw_escapes=True)
        replacement = self.closing("}", "'}'", raw_escapes=True)
        value = self.lookup(name)[0]
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if not replace_all:
            match = regex.search(value)
            return value if match is None else (
                value[:match.start()] + replacement + value[match.end():])
        return _replace_all(regex, value, replacement)


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell pattern (``*``, ``?``, ``\\`` escapes; no brackets) as a regex."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i] if i < len(pattern) else _EOF
            if following in ("}", "/"):  # escaped only to get past the ${} parser
                continue
            if following not in ("*", "?", "\\"):
                raise _LexError(f"invalid pattern ({pattern}) in substitution: "
                                f"invalid escape '\\{following}'")
            out.append(re.escape(following))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy, anchored=True).search(value)
    return value if match is None else value[match.end():]


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each escape before the character it escapes."""
    out = [""] * len(pattern)
    last = len(pattern) - 1
    i = 0
    while i <= last:
        if pattern[i] == "\\" and i != last:
            out[last - i - 1] = "\\"
            out[last - i] = pattern[i + 1]
            i += 2
        else:
            out[last - i] = pattern[i]
            i += 1
    return "".join(out)


def _replace_all(regex: re.Pattern[str], value: str, replacement: str) -> str:
    """Go's ReplaceAllString: an empty match right after the previous match is skipped."""
    out: list[str] = []
    pos = 0
    previous_end = -1
    for match in regex.finditer(value):
        skip = match.start() == match.end() == previous_end
        previous_end = match.end()
        if skip:
            continue
        out.append(value[pos:match.start()])
        out.append(replacement)
        pos = match.end()
    out.append(value[pos:])
    return "".join(out)
