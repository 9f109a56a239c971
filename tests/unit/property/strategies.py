"""Shared hypothesis settings and strategies of the property tier.

The settings keep the whole tier under a minute on two cores: ~200 examples per
property, no per-example deadline (a loaded CI machine is not a bug), and no
example database written into the checkout. ``PAAS_PROPERTY_EXAMPLES=5000`` digs
deeper on a developer's machine.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["FEW", "PROPERTY", "nasty_text", "nasty_value"]

_EXAMPLES = int(os.environ.get("PAAS_PROPERTY_EXAMPLES") or 200)
PROPERTY = settings(max_examples=_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
# for properties whose every example is costly (a real subprocess)
FEW = settings(max_examples=max(25, _EXAMPLES // 8), deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])

# Characters that break naive parsers and config writers: separators, quotes,
# escapes, nginx and shell syntax, line ends, NUL, a BOM, wide and combining ones.
_SPECIAL = list(" \t\r\n\v\f\x00\\`'\"=:;#${}[]()<>|&*?~!%@,./-_+\ufeff\u2028\u0085\u00e9"
                "\u212a\u0130\U0001f680\u4e2d\ud800")


def nasty_text(max_size: int = 80) -> st.SearchStrategy[str]:
    """Text biased towards the characters above, any unicode otherwise."""
    return st.text(st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=max_size)


def nasty_value(max_size: int = 80) -> st.SearchStrategy[str]:
    """``nasty_text`` without lone surrogates and NUL: what a config value may hold."""
    chars = st.one_of(st.sampled_from([c for c in _SPECIAL if c not in "\x00\ud800"]),
                      st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
    return st.text(chars, max_size=max_size)
