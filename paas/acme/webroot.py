"""HTTP-01 answers as files nginx serves: ``PAAS_ROOT/nginx/acme/.well-known/
acme-challenge/<token>``.

Dirs are 0710 root:<nginx workers' group>, files 0640 root:<that group>, so only
nginx's workers read them. A file is written aside and renamed into place, so nginx
never serves half of one. Not here: nginx's location for the path (``paas.proxy``).
"""

from __future__ import annotations

import os
import secrets

from .. import modes

__all__ = ["DirWebroot", "challenge_dir"]

CHALLENGE_FILE = 0o640


def challenge_dir(webroot: str) -> str:
    return os.path.join(webroot, ".well-known", "acme-challenge")


class DirWebroot:
    """The ``Webroot`` under ``root`` (``ProxyParams.acme_webroot``); ``gid`` the nginx
    workers' group (None: root-only, when nginx does not switch users)."""

    def __init__(self, root: str, gid: int | None) -> None:
        self.root = root
        self.gid = gid

    def _dir(self) -> str:
        modes.makedirs(os.path.dirname(self.root))  # nginx/: made by the proxy normally
        path = ""
        for path in (self.root, os.path.join(self.root, ".well-known"), challenge_dir(self.root)):
            try:
                os.mkdir(path, modes.PRIVATE_DIR)
            except FileExistsError:
                continue
            if self.gid is not None:
                os.chown(path, 0, self.gid)
                os.chmod(path, modes.BUNDLE_DIR)
        return path

    def publish(self, token: str, content: str) -> None:
        d = self._dir()
        tmp = os.path.join(d, f".{token}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            if self.gid is not None:
                os.fchown(fd, 0, self.gid)
                os.fchmod(fd, CHALLENGE_FILE)
            os.write(fd, content.encode("ascii"))
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, os.path.join(d, token))

    def withdraw(self, token: str) -> None:
        try:
            os.unlink(os.path.join(challenge_dir(self.root), token))
        except FileNotFoundError:
            pass
