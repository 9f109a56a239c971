"""The stack image's offline wheelhouse, made from Debian's own package files.

The Python buildpack never lets the stack's site-packages satisfy an app's
requirements (its venv has no system site-packages), yet an app that lists no web
server still gets a working default ``gunicorn`` web process, and every venv gets
pip, without the index and without ``ensurepip``. Both come from ``WHEELHOUSE`` in
the stack image (``/usr/share/paas/wheels``):

- ``gunicorn-<v>-py3-none-any.whl``, packed from Debian's ``python3-gunicorn`` files
  (``/usr/lib/python3/dist-packages/gunicorn`` and its ``.egg-info``): its metadata,
  entry points and a ``RECORD``; Debian drops the ``setuptools`` requirement because
  its ``python3-pkg-resources`` is always there, so it is put back when the code
  imports ``pkg_resources`` (gunicorn 20.1 does);
- Debian's ``pip`` and ``setuptools`` wheels (``python3-pip-whl``,
  ``python3-setuptools-whl``: ``/usr/share/python-wheels``), linked in.

Made at stack build time by an mmdebstrap customize hook (``customize_hooks``) that
runs this file, standard library only, on the host with the chroot as its argument,
so ``image:bootstrap --stack`` and the tests' ``stack_tar`` build the same stack,
offline and reproducibly (fixed zip timestamps, sorted entries).

Not here: which packages the stack has (``buildpacks.STACK_PACKAGES``), the buildpack
that installs these wheels (``buildpacks/python``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import shutil
import sys
import zipfile
from collections.abc import Iterable, Sequence

__all__ = ["DEBIAN_WHEELS", "DIST_PACKAGES", "PACKAGES", "WHEELHOUSE", "customize_hooks",
           "make_wheel", "populate", "stack_key"]

WHEELHOUSE = "usr/share/paas/wheels"
DIST_PACKAGES = "usr/lib/python3/dist-packages"
DEBIAN_WHEELS = "usr/share/python-wheels"
# distributions packed from dist-packages, and the Debian wheels linked in
PACKAGES = ("gunicorn",)
LINKED = ("pip", "setuptools")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes on every build
_GENERATOR = "paas stackwheels (from Debian's package files)"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _egg_info(dist_packages: str, name: str) -> tuple[str, str]:
    """(the .egg-info or .dist-info dir of ``name``, its version)."""
    for entry in sorted(os.listdir(dist_packages)):
        m = re.fullmatch(r"([A-Za-z0-9_.-]+?)-([0-9][A-Za-z0-9_.+!-]*?)(?:\.egg-info|\.dist-info)",
                         entry)
        if m and _norm(m[1]) == _norm(name):
            return os.path.join(dist_packages, entry), m[2]
    raise FileNotFoundError(f"no metadata of {name} in {dist_packages}")


def _requires(info: str) -> tuple[list[str], list[str]]:
    """``Requires-Dist`` and ``Provides-Extra`` values from an egg-info ``requires.txt``."""
    path = os.path.join(info, "requires.txt")
    reqs: list[str] = []
    extras: list[str] = []
    if not os.path.isfile(path):
        return reqs, extras
    extra, marker = "", ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                extra, _, marker = line[1:-1].partition(":")
                if extra and extra not in extras:
                    extras.append(extra)
                continue
            conds = [f"({marker})"] if marker else []
            if extra:
                conds.append(f'extra == "{extra}"')
            reqs.append(line + ("; " + " and ".join(conds) if conds else ""))
    return reqs, extras


def _metadata(info: str, extra_reqs: Sequence[str]) -> bytes:
    """METADATA: the headers of PKG-INFO/METADATA plus the requirements, then the body."""
    name = "METADATA" if info.endswith(".dist-info") else "PKG-INFO"
    with open(os.path.join(info, name), encoding="utf-8") as f:
        text = f.read()
    head, sep, body = text.partition("\n\n")
    lines = head.splitlines()
    reqs, extras = _requires(info) if name == "PKG-INFO" else ([], [])
    have = {re.split(r"[ ;<>=!~\[]", h.split(":", 1)[1].strip(), maxsplit=1)[0].lower()
            for h in lines if h.startswith("Requires-Dist:")}
    lines += [f"Provides-Extra: {e}" for e in extras if f"Provides-Extra: {e}" not in lines]
    lines += [f"Requires-Dist: {r}" for r in [*reqs, *extra_reqs]
              if re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0].lower() not in have]
    return ("\n".join(lines) + "\n" + ("\n" + body if sep else "")).encode()


def _package_files(dist_packages: str, info: str) -> list[str]:
    """The paths (relative to dist-packages) of the distribution's modules, no bytecode."""
    top = os.path.join(info, "top_level.txt")
    names = []
    if os.path.isfile(top):
        with open(top, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    out = []
    for name in names:
        root = os.path.join(dist_packages, name)
        if os.path.isfile(root + ".py"):
            out.append(name + ".py")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if not fn.endswith((".pyc", ".pyo")):
                    out.append(os.path.relpath(os.path.join(dirpath, fn), dist_packages))
    return sorted(out)


def _imports_pkg_resources(dist_packages: str, files: Iterable[str]) -> bool:
    pattern = re.compile(rb"^\s*(import|from)\s+pkg_resources\b", re.MULTILINE)
    for rel in files:
        if rel.endswith(".py"):
            with open(os.path.join(dist_packages, rel), "rb") as f:
                if pattern.search(f.read()):
                    return True
    return False


def _entry(name: str) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=_EPOCH)
    zi.external_attr = 0o644 << 16
    zi.compress_type = zipfile.ZIP_DEFLATED
    return zi


def make_wheel(dist_packages: str, name: str, out_dir: str) -> str:
    """Pack the installed distribution ``name`` of ``dist_packages`` as a pure-Python
    wheel in ``out_dir``; returns its path."""
    info, version = _egg_info(dist_packages, name)
    files = _package_files(dist_packages, info)
    if not files:
        raise FileNotFoundError(f"no modules of {name} in {dist_packages} (top_level.txt)")
    extra = ["setuptools"] if _imports_pkg_resources(dist_packages, files) else []
    dist_info = f"{_norm(name)}-{version}.dist-info"
    members: list[tuple[str, bytes]] = []
    for rel in files:
        with open(os.path.join(dist_packages, rel), "rb") as f:
            members.append((rel, f.read()))
    members.append((f"{dist_info}/METADATA", _metadata(info, extra)))
    members.append((f"{dist_info}/WHEEL", (
        f"Wheel-Version: 1.0\nGenerator: {_GENERATOR}\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n").encode()))
    entry_points = os.path.join(info, "entry_points.txt")
    if os.path.isfile(entry_points):
        with open(entry_points, "rb") as f:
            members.append((f"{dist_info}/entry_points.txt", f.read()))
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in members)
    record += f"{dist_info}/RECORD,,\n"
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{_norm(name)}-{version}-py3-none-any.whl")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for n, d in members:
            zf.writestr(_entry(n), d)
        zf.writestr(_entry(f"{dist_info}/RECORD"), record)
    os.replace(tmp, path)
    return path


def populate(root: str, house: str | None = None) -> list[str]:
    """Fill ``root``'s wheelhouse (``root`` is the stack's root directory; ``house``
    another directory to fill, e.g. in tests of the host's packages); returns the
    wheels' file names."""
    house = house or os.path.join(root, WHEELHOUSE)
    os.makedirs(house, exist_ok=True)
    names = [os.path.basename(make_wheel(os.path.join(root, DIST_PACKAGES), p, house))
             for p in PACKAGES]
    debian = os.path.join(root, DEBIAN_WHEELS)
    for entry in sorted(os.listdir(debian)) if os.path.isdir(debian) else []:
        if entry.endswith(".whl") and _norm(entry.split("-", 1)[0]) in LINKED:
            dest = os.path.join(house, entry)
            if os.path.lexists(dest):
                os.unlink(dest)
            try:
                os.link(os.path.join(debian, entry), dest)
            except OSError:
                shutil.copy2(os.path.join(debian, entry), dest)
            names.append(entry)
    missing = [p for p in LINKED if not any(_norm(n.split("-", 1)[0]) == p for n in names)]
    if missing:
        raise FileNotFoundError(f"no Debian wheel of {', '.join(missing)} in {debian} "
                                "(python3-venv brings python3-pip-whl, python3-setuptools-whl)")
    return sorted(names)


def customize_hooks(python: str = sys.executable) -> list[str]:
    """mmdebstrap arguments that run ``populate`` on the new stack's root."""
    script = os.path.abspath(__file__)
    return [f"--customize-hook={shlex.quote(python)} {shlex.quote(script)} \"$1\""]


def stack_key(packages: Sequence[str]) -> str:
    """What the stack's rootfs is made from: the packages and this file (8 hex digits)."""
    with open(os.path.abspath(__file__), "rb") as f:
        own = hashlib.sha256(f.read()).hexdigest()
    return hashlib.sha256((",".join(packages) + "\n" + own).encode()).hexdigest()[:8]


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: stackwheels.py ROOT (the stack's root directory)", file=sys.stderr)
        return 2
    for name in populate(argv[0]):
        print(f"stack wheelhouse: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
