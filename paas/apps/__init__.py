"""The app registry: apps, their config vars, domains, settings and formation.

``validate`` holds the pure checks every user-supplied name or value passes
before it reaches a path, a command line or an nginx config; ``settings`` the
table of known per-app settings; ``store`` the SQLite-backed ``AppStore``.

Not here: git repositories, builds, releases, containers or nginx (``paas.deploy``
and the pipeline stages use this registry for those).
"""

from .store import AppRecord, AppStore

__all__ = ["AppRecord", "AppStore"]
