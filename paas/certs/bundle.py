"""``certs:add APP < certs.tar``: the certificate and key out of a tar on stdin, as
Dokku takes them (``server.crt`` and ``server.key``, at the top or in one directory).

Pure: bytes in, (chain PEM, key PEM) out; nothing is extracted to disk, and only
those two regular files are read (no links, nothing else looked at). One line
when the tar is not one or lacks a file.
"""

from __future__ import annotations

import io
import os
import tarfile

from ..errors import InvalidArgument

__all__ = ["MAX_MEMBER", "from_tar"]

MAX_MEMBER = 1 << 20  # a PEM chain is a few kB; more is not a certificate
_NAMES = ("server.crt", "server.key")


def from_tar(data: bytes) -> tuple[bytes, bytes]:
    """(``server.crt``, ``server.key``) of a tar (plain or compressed)."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise InvalidArgument("standard input is not a tar archive",
                              "pipe a tar holding server.crt and server.key, e.g. "
                              "tar cf - server.crt server.key | paas certs:add APP") from err
    found: dict[str, bytes] = {}
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise InvalidArgument("the tar on standard input is damaged",
                                  "make it again: tar cf - server.crt server.key") from err
        for m in members:
            base = os.path.basename(m.name.rstrip("/"))
            if base not in _NAMES or m.name.count("/") > 1 + m.name.startswith("./"):
                continue
            if not m.isreg() or m.size > MAX_MEMBER:
                raise InvalidArgument(f"{m.name} in the tar is not a small regular file",
                                      "put the PEM files themselves in the tar")
            if base in found:
                raise InvalidArgument(f"the tar holds more than one {base}",
                                      "put one server.crt and one server.key in it")
            f = tar.extractfile(m)
            found[base] = f.read() if f is not None else b""
    missing = [n for n in _NAMES if n not in found]
    if missing:
        raise InvalidArgument(f"the tar on standard input has no {' or '.join(missing)}",
                              "name the files server.crt (the chain) and server.key")
    return found["server.crt"], found["server.key"]
