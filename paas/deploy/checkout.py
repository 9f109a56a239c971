"""Write the tree of a commit from a bare repository into a directory (dulwich).

Only regular files, executables and symlinks are written; submodules (gitlinks)
are skipped. Paths come from git trees, which a pusher controls, so every
component is checked: no ``..``, no ``.git``, nothing absolute, no separators
inside a name; files are created below the target dir only, never through a
symlink (written last, after every file).

Not here: building (``paas.build``), which commit to deploy (``push``).
"""

from __future__ import annotations

import os
import stat

from ..errors import InvalidArgument, NotFound

__all__ = ["checkout"]

_GITLINK = 0o160000


def _safe_parts(path: bytes) -> list[str]:
    text = path.decode("utf-8", "surrogateescape")
    parts = text.split("/")
    for p in parts:
        if p in ("", ".", "..") or p.lower() == ".git" or "\\" in p or "\x00" in p:
            raise InvalidArgument(f"refusing the path {text!r} in the pushed tree",
                                  "remove it from the repository")
    return parts


def checkout(repo_path: str, commit_sha: str, dest: str) -> int:
    """Write ``commit_sha``'s tree into the empty dir ``dest``; returns the file count."""
    from dulwich.repo import Repo

    repo = Repo(repo_path)
    try:
        try:
            commit = repo[commit_sha.encode()]
        except KeyError as err:
            raise NotFound(f"commit {commit_sha} is not in {repo_path}") from err
        tree_id = commit.tree  # type: ignore[attr-defined]
        links: list[tuple[list[str], bytes]] = []
        count = 0
        for entry in repo.object_store.iter_tree_contents(tree_id):
            path, mode, sha = entry.path, entry.mode, entry.sha
            if path is None or mode is None or sha is None or mode == _GITLINK:
                continue
            parts = _safe_parts(path)
            blob = repo.object_store[sha].as_raw_string()
            if stat.S_ISLNK(mode):
                links.append((parts, blob))
                continue
            parent = os.path.join(dest, *parts[:-1])
            os.makedirs(parent, 0o755, exist_ok=True)
            target = os.path.join(parent, parts[-1])
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o755 if mode & 0o111 else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            count += 1
        for parts, target_bytes in links:
            parent = os.path.join(dest, *parts[:-1])
            os.makedirs(parent, 0o755, exist_ok=True)
            os.symlink(target_bytes.decode("utf-8", "surrogateescape"),
                       os.path.join(parent, parts[-1]))
            count += 1
        return count
    finally:
        repo.close()
