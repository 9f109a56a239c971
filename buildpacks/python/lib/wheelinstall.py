"""Install the stack's pure-Python wheels into a venv without running pip.

``VENV/bin/python wheelinstall.py [--from DIR] [--compile PKG]... WHEEL|NAME...`` unpacks
each wheel (a path, or with ``--from`` a name whose wheel is in DIR, with the
unconditional requirements of its metadata, found in DIR too) into the running
interpreter's site-packages (so run it with the venv's python),
writes its console scripts (from ``entry_points.txt``, with the venv's python in the
shebang), marks it installed (``INSTALLER``, ``RECORD`` with the scripts), and
byte-compiles the top-level packages named by ``--compile``. A distribution that the
venv already has is left alone (the app's own always wins). This is what pip does
for a pure wheel, in a tenth of the time: the buildpack uses it for pip itself and for
the stack's gunicorn (``/usr/share/paas/wheels``), which are trusted files of the stack;
an entry outside site-packages (absolute, ``..``) is refused all the same.

Not here: dependency resolution (the caller names every wheel), platform wheels,
``.data`` dirs other than purelib/platlib/scripts.
"""

from __future__ import annotations

import base64
import compileall
import configparser
import csv
import hashlib
import io
import os
import re
import sys
import sysconfig
import zipfile

SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def _installed(site: str, dist: str) -> bool:
    norm = re.sub(r"[-_.]+", "_", dist).lower()
    return any(e.endswith(".dist-info") and re.sub(r"[-_.]+", "_", e.split("-")[0]).lower()
               == norm for e in os.listdir(site))


def install(wheel: str, site: str, bindir: str, python: str) -> str:
    """Unpack ``wheel``; returns its distribution name ('' when already installed)."""
    dist = os.path.basename(wheel).split("-")[0]
    if _installed(site, dist):
        return ""
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        dist_info = next(i.filename.split("/")[0] for i in infos
                         if i.filename.split("/")[0].endswith(".dist-info"))
        for info in infos:
            parts = info.filename.split("/")
            if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                raise SystemExit(f"{wheel}: refusing the entry {info.filename!r}")
            data = zf.read(info)
            if parts[0].endswith(".data"):
                if parts[1] in ("purelib", "platlib"):
                    dest = os.path.join(site, *parts[2:])
                elif parts[1] == "scripts":
                    dest = os.path.join(bindir, *parts[2:])
                    if data.startswith(b"#!python"):
                        data = b"#!" + python.encode() + data[len(b"#!python"):]
                else:
                    continue
            elif parts[-1] == "RECORD" and parts[0] == dist_info:
                continue
            else:
                dest = os.path.join(site, *parts)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(data)
            if dest.startswith(bindir + os.sep):
                os.chmod(dest, 0o755)
            records.append((os.path.relpath(dest, site), _hash(data), str(len(data))))
    for dest, data in _scripts(os.path.join(site, dist_info), bindir, python):
        with open(dest, "w", encoding="utf-8") as f:
            f.write(data)
        os.chmod(dest, 0o755)
        raw = data.encode()
        records.append((os.path.relpath(dest, site), _hash(raw), str(len(raw))))
    installer = os.path.join(site, dist_info, "INSTALLER")
    with open(installer, "w", encoding="utf-8") as f:
        f.write("paas\n")
    records.append((os.path.relpath(installer, site), _hash(b"paas\n"), "5"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(records)
    writer.writerow((f"{dist_info}/RECORD", "", ""))
    with open(os.path.join(site, dist_info, "RECORD"), "w", encoding="utf-8") as f:
        f.write(out.getvalue())
    return dist


def _scripts(dist_info: str, bindir: str, python: str) -> list[tuple[str, str]]:
    path = os.path.join(dist_info, "entry_points.txt")
    if not os.path.isfile(path):
        return []
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    out = []
    for name, target in (parser["console_scripts"].items()
                         if parser.has_section("console_scripts") else []):
        module, _, attr = target.strip().partition(":")
        attr = attr.split("[")[0].strip() or "main"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            continue
        out.append((os.path.join(bindir, name), SCRIPT.format(
            python=python, module=module.strip(), head=attr.split(".")[0], call=attr)))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _requires(wheel: str) -> list[str]:
    """The names of a wheel's requirements without markers (no extras, no conditions)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace").partition("\n\n")[0]
    names = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and ";" not in line:
            names.append(re.split(r"[ <>=!~(\[]", line.split(":", 1)[1].strip(), maxsplit=1)[0])
    return names


def resolve(names: list[str], directory: str, site: str) -> list[str]:
    """The wheels of DIR for ``names`` and their requirements, dependencies first; a
    requirement the venv already has is not looked up."""
    available = {}
    for entry in sorted(os.listdir(directory)):
        if entry.endswith(".whl"):
            available[_norm(entry.split("-")[0])] = os.path.join(directory, entry)
    out: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        key = _norm(name)
        if key in chain or any(_norm(os.path.basename(w).split("-")[0]) == key for w in out):
            return
        if key not in available:
            if _installed(site, name):
                return
            raise SystemExit(f"wheelinstall: no wheel of {name} in {directory}")
        for req in _requires(available[key]):
            if not _installed(site, req):
                visit(req, (*chain, key))
        out.append(available[key])

    for name in names:
        visit(name, ())
    return out


def main(argv: list[str]) -> int:
    compile_pkgs: list[str] = []
    wheels: list[str] = []
    directory = ""
    args = iter(argv)
    for arg in args:
        if arg == "--compile":
            compile_pkgs.append(next(args, ""))
        elif arg == "--from":
            directory = next(args, "")
        else:
            wheels.append(arg)
    if not wheels:
        print("usage: wheelinstall.py [--from DIR] [--compile PKG]... WHEEL|NAME...",
              file=sys.stderr)
        return 2
    site = sysconfig.get_paths()["purelib"]
    bindir = os.path.dirname(sys.executable)
    python = os.path.join(bindir, "python")
    if directory:
        wheels = resolve(wheels, directory, site)
    for wheel in wheels:
        name = install(wheel, site, bindir, python)
        if name:
            print(f"installed {os.path.basename(wheel)}")
    for pkg in compile_pkgs:
        path = os.path.join(site, pkg)
        if pkg and os.path.isdir(path):
            compileall.compile_dir(path, quiet=1, workers=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
