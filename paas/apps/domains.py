"""Which names an app may claim, and how claims of different apps meet (pure functions).

Rules (``AppStore`` enforces them on every write; ``effective_domains`` once more when
routes are built, for databases written before them):

- A name belongs to one app: an added domain (``app_domains``, one row per name), or an
  app's default ``APP.<global domain>``, which is reserved for that app even while its
  default vhost is off. Adding a name another app owns is refused naming the owner;
  creating or renaming an app whose default name another app has added is refused, and
  so is a global domain (set or cleared) under which that would happen: a push never
  prints a URL that another app answers.
- Wildcards: ``*.example.com`` matches names at any depth below example.com. nginx
  prefers exact names, then the longest wildcard, so exact names of other apps keep
  winning over an app's wildcard, as on Heroku and Dokku; both sides are told (``notes``)
  when a claim overlaps another app's. One wildcard belongs to one app, like any name,
  so nginx never sees the same name twice ("conflicting server name").
- Public suffixes (``paas.apps.publicsuffix``) are nobody's: ``com``, ``co.uk``,
  ``localhost`` alone, ``github.io``, and wildcards of them (``*.com``, ``*.localhost``)
  are refused; ``APP.localhost`` stays the default. A global domain may not be an ICANN
  suffix (``com``, ``co.uk``); unlisted single names (``localhost``, ``lan``) and the
  list's private suffixes (made for "apps of many owners under one name") are fine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import InvalidArgument
from .publicsuffix import ICANN, SuffixList

__all__ = ["check_claimable", "check_global", "covers", "notes"]


def check_claimable(domain: str, suffixes: SuffixList) -> str:
    """``domain`` (validated) unless it is a public suffix or a wildcard of one."""
    base = domain.removeprefix("*.")
    if suffixes.is_public_suffix(base):
        what = f"a wildcard of the public suffix {base}" if base != domain else \
            "a public suffix"
        raise InvalidArgument(
            f"domain {domain} is {what}: names under it belong to different owners",
            "add a name you own below it, e.g. app.example.com or *.app.example.com")
    return domain


def check_global(domain: str, suffixes: SuffixList) -> str:
    """A global domain: not an ICANN public suffix (apps would get APP.com)."""
    suffix, section = suffixes.public_suffix(domain)
    if suffix == domain and section == ICANN:
        raise InvalidArgument(
            f"global domain {domain} is a public suffix: apps would get names like "
            f"APP.{domain} that are not yours",
            "use a domain you own, e.g. apps.example.com")
    return domain


def covers(wildcard: str, name: str) -> bool:
    """Whether nginx's ``*.example.com`` matches ``name`` (any depth, not the base)."""
    return wildcard.startswith("*.") and name != wildcard and name.endswith(wildcard[1:])


def notes(app: str, added: Iterable[str], claims: Mapping[str, str]) -> list[str]:
    """What adding ``added`` to ``app`` means for other apps' names (``claims``: every
    served name -> its app): exact names keep winning over wildcards."""
    out = []
    for d in added:
        for name, owner in sorted(claims.items()):
            if owner == app or name == d:
                continue
            if covers(d, name):
                out.append(f"{name} stays with app {owner}: exact names win over {d}")
            elif covers(name, d):
                out.append(f"{d} was served by app {owner}'s {name}: now by {app} "
                           "(exact and longer names win)")
    return out
