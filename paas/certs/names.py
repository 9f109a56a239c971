"""Which domains a certificate's DNS names cover (pure, no ``cryptography``).

RFC 6125 matching: exact names (case and a trailing dot ignored), and a wildcard
``*.example.com`` standing for exactly one whole leftmost label (``a.example.com``,
not ``example.com`` nor ``a.b.example.com``). An app's own wildcard domain
(``*.example.com``) is covered only by the same wildcard.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["covers", "uncovered"]


def covers(names: Sequence[str], domain: str) -> bool:
    """Whether a certificate for ``names`` is valid for ``domain``."""
    domain = domain.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == domain:
            return True
        if name.startswith("*.") and not domain.startswith("*."):
            label, _, rest = domain.partition(".")
            if label and rest == name[2:]:
                return True
    return False


def uncovered(names: Sequence[str], domains: Sequence[str]) -> list[str]:
    """The ``domains`` a certificate for ``names`` does not cover."""
    return [d for d in domains if not covers(names, d)]
