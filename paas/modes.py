"""File modes under ``PAAS_ROOT``: everything is root's, except what containers and
nginx's workers must reach.

State, environments, logs, keys, blobs and layer trees are root-only (0700 dirs, 0600
files). The exceptions, and why::

    PAAS_ROOT, containers/   0711  container root is a mapped host uid, and runc init
                                   opens the rootfs path as that uid: it must traverse
    containers/<id>/         0710 root:<the container's mapped root gid> (0700 without
                                   a user namespace): no other host user gets in
      hosts hostname resolv.conf  0644: bind-mounted, read by every user in the container
      upper/                 the container's "/" (owned by its mapped root)
    nginx/, nginx/logs, nginx/tmp  0710 root:<workers' group>: workers (nobody) reopen
                                   the logs and write temp files there
    nginx/acme/... , certs/, certs/<app>/  0710 root:<workers' group>, their files
                                   (challenge answers, tls.pem) 0640: workers read
                                   them (a certificate per TLS handshake)

Layer trees (``snapshots/<key>/<n>/fs``) keep the image's own modes under 0700
ancestors: overlayfs checks lower dirs with the mounter's (root's) credentials. Bind
mount sources (``buildcache/<app>``, ``data/storage/<name>``, owned by an app's mapped
uid) may sit under 0700 parents too: runc (since 1.1) opens them as host root before
it enters the user namespace; the rootfs it opens as the container's root.

Creation sets modes explicitly: ``makedirs`` gives every level it creates its mode
(``os.makedirs`` gives intermediate dirs 0777 & ~umask), ``create`` opens a new file
with its mode. No process-wide umask: layer extraction and builds must keep the
modes the image says. Existing trees are checked and repaired by
``paas.doctor.modes`` (``paas report --fix``, paasd's start).
"""

from __future__ import annotations

import os

__all__ = ["BUNDLE_DIR", "PRIVATE_DIR", "PRIVATE_FILE", "SHARED_FILE", "TRAVERSE_DIR",
           "WORKERS_FILE", "create", "makedirs", "private_bundle_dir"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TRAVERSE_DIR = 0o711  # PAAS_ROOT, containers/: searchable by container uids, not listable
BUNDLE_DIR = 0o710  # containers/<id>, nginx/...: searchable by one group only
SHARED_FILE = 0o644  # read by every user inside a container (its /etc/hosts ...)
WORKERS_FILE = 0o640  # root:<nginx workers' group>: a certificate and key, a challenge


def makedirs(path: str, mode: int = PRIVATE_DIR) -> None:
    """``os.makedirs(path, exist_ok=True)`` where every created level gets ``mode``.

    An existing ``path`` is left as it is (``paas.doctor.modes`` repairs). Modes with
    group or other bits are set with chmod too: a umask may clear them."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not parent or parent == path:
            raise
        makedirs(parent, mode)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            return
    if mode & 0o077:
        os.chmod(path, mode)


def create(path: str, flags: int = os.O_WRONLY | os.O_TRUNC, mode: int = PRIVATE_FILE) -> int:
    """``os.open(path, flags | O_CREAT | O_CLOEXEC, mode)``: a file created root-only
    (an existing file keeps its mode)."""
    return os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, mode)


def private_bundle_dir(path: str, gid: int | None) -> None:
    """A new dir that only root and group ``gid`` may traverse (0710 root:gid), or
    root alone (0700) when ``gid`` is None."""
    os.mkdir(path, PRIVATE_DIR)
    if gid is not None:
        os.chown(path, 0, gid)
        os.chmod(path, BUNDLE_DIR)
