"""The Public Suffix List (Debian's ``publicsuffix`` package), parsed here.

``SuffixList.public_suffix(domain)`` follows the list's own algorithm
(https://publicsuffix.org/list/): of the rules matching the domain's rightmost labels
(``*`` matching any one label), an exception rule (``!www.ck``) wins and stands for its
parent; else the rule with the most labels; else the implicit ``*`` rule, which makes
every unlisted top-level name (``localhost``, ``lan``) a public suffix too. Each rule
remembers its section (ICANN or PRIVATE, the list's ``===BEGIN ...===`` markers); the
implicit rule's section is ``default``. Rules in Unicode are matched in punycode (the
only form ``validate_domain`` accepts).

The list is read on first use (~10 ms, 12,000 rules) by the domain commands only, never
by the CLI's container paths. Not covered: the list's updates (the package's).
"""

from __future__ import annotations

from functools import cache

from ..errors import FailedPrecondition

__all__ = ["DEFAULT_PATH", "ICANN", "IMPLICIT", "PRIVATE", "SuffixList", "load"]

DEFAULT_PATH = "/usr/share/publicsuffix/public_suffix_list.dat"
ICANN, PRIVATE, IMPLICIT = "icann", "private", "default"


def _ascii(rule: str) -> str | None:
    if rule.isascii():
        return rule.lower()
    try:
        return ".".join(label.encode("idna").decode("ascii") if not label.isascii() else label
                        for label in rule.split(".")).lower()
    except UnicodeError:  # not expressible in IDNA 2003: no ASCII name can match it
        return None


class SuffixList:
    """Parsed rules: plain names, ``*.`` parents and ``!`` exceptions, with sections."""

    def __init__(self, text: str) -> None:
        self.rules: dict[str, str] = {}
        self.wildcards: dict[str, str] = {}  # "ck" for the rule "*.ck"
        self.exceptions: dict[str, str] = {}  # "www.ck" for "!www.ck"
        section = ICANN
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("//"):
                if "===BEGIN PRIVATE DOMAINS===" in line:
                    section = PRIVATE
                elif "===BEGIN ICANN DOMAINS===" in line:
                    section = ICANN
                continue
            if not line:
                continue
            rule = _ascii(line.split()[0])
            if rule is None:
                continue
            if rule.startswith("!"):
                self.exceptions[rule[1:]] = section
            elif rule.startswith("*."):
                self.wildcards[rule[2:]] = section
            else:
                self.rules[rule] = section

    def public_suffix(self, domain: str) -> tuple[str, str]:
        """(the public suffix of ``domain``, the section of the rule that gave it)."""
        labels = domain.lower().rstrip(".").split(".")
        n = len(labels)
        for i in range(n):  # exceptions first: "www.ck" is registrable under "ck"
            name = ".".join(labels[i:])
            if name in self.exceptions:
                return ".".join(labels[i + 1:]), self.exceptions[name]
        for i in range(n):  # the longest match: a wildcard covers one more label
            name = ".".join(labels[i:])
            if i > 0 and name in self.wildcards:
                return ".".join(labels[i - 1:]), self.wildcards[name]
            if name in self.rules:
                return name, self.rules[name]
        return labels[-1], IMPLICIT

    def is_public_suffix(self, domain: str) -> bool:
        return self.public_suffix(domain)[0] == domain.lower().rstrip(".")


@cache
def load(path: str = DEFAULT_PATH) -> SuffixList:
    """The list at ``path``, parsed once per process."""
    try:
        with open(path, encoding="utf-8") as f:
            return SuffixList(f.read())
    except FileNotFoundError:
        raise FailedPrecondition(
            f"the public suffix list {path} is missing: domains cannot be checked",
            "install it: apt-get install publicsuffix (install.sh does)") from None
