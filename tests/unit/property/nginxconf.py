"""A small parser of nginx config syntax, as nginx's ngx_conf_read_token reads it.

Gives the tree of directives and blocks of a rendered config, so the property tests
can compare its shape with the expected one: an injected ``;``, ``{``, ``}``,
quote or line break changes the shape. Not a validator (``nginx -t`` is).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Directive", "ParseError", "parse", "shape", "tokens"]


class ParseError(Exception):
    pass


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] | None = None  # None: a simple directive


_SPACE = " \t\r\n"


def tokens(text: str) -> list[str]:
    """Words (quotes removed, escapes applied) and the specials ``;``, ``{``, ``}``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif c in ";{}":
            out.append(c)
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "\"'":
            word, i = _quoted(text, i + 1, c)
            out.append("\0" + word)  # marks a word that cannot be a special
            if i < n and text[i] not in _SPACE + ";{}":
                raise ParseError(f"unexpected {text[i]!r} after a quoted string")
        else:
            start, chars = i, []
            while i < n and text[i] not in _SPACE + ";{}":
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            assert i > start
            out.append("\0" + "".join(chars))
    return out


def _quoted(text: str, i: int, quote: str) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            chars.append(nxt if nxt in "\"'\\" else c + nxt)
            i += 2
            continue
        if c == quote:
            return "".join(chars), i + 1
        chars.append(c)
        i += 1
    raise ParseError("unterminated quoted string")


def parse(text: str) -> tuple[Directive, ...]:
    toks = tokens(text)
    tree, pos = _block(toks, 0, top=True)
    assert pos == len(toks)
    return tree


def _block(toks: list[str], pos: int, *, top: bool) -> tuple[tuple[Directive, ...], int]:
    out: list[Directive] = []
    words: list[str] = []
    while pos < len(toks):
        tok = toks[pos]
        pos += 1
        if tok == ";":
            if not words:
                raise ParseError("unexpected ';'")
            out.append(Directive(words[0], tuple(words[1:])))
            words = []
        elif tok == "{":
            if not words:
                raise ParseError("unexpected '{'")
            inner, pos = _block(toks, pos, top=False)
            out.append(Directive(words[0], tuple(words[1:]), inner))
            words = []
        elif tok == "}":
            if top or words:
                raise ParseError("unexpected '}'")
            return tuple(out), pos
        else:
            words.append(tok[1:])
    if words or not top:
        raise ParseError("unexpected end of file")
    return tuple(out), pos


def shape(tree: tuple[Directive, ...]) -> tuple[object, ...]:
    """Directive names and block nesting, without the arguments."""
    return tuple((d.name, None if d.block is None else shape(d.block)) for d in tree)
