"""The stack's wheelhouse: wheels packed from an installed distribution's files (a fake
dist-packages in a temp dir), the mmdebstrap hook and the stack tar's key."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from paas.build import stackwheels
from paas.build.stackwheels import customize_hooks, make_wheel, populate, stack_key
from paas.errors import InvalidArgument
from paas.image.bootstrap import mmdebstrap_argv


def _dist_packages(root: Path, *, pkg_resources: bool = True) -> Path:
    dist = root / "usr/lib/python3/dist-packages"
    (dist / "demo" / "sub").mkdir(parents=True)
    (dist / "demo" / "__pycache__").mkdir()
    (dist / "demo" / "__init__.py").write_text(
        "import pkg_resources\n" if pkg_resources else "import importlib\n")
    (dist / "demo" / "sub" / "x.py").write_text("X = 1\n")
    (dist / "demo" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    info = dist / "demo-2.0.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n"
                                   "Provides-Extra: fast\n\nThe description.\n")
    (info / "requires.txt").write_text(
        'packaging>=20\n\n[fast]\nuvloop\n\n[:python_version < "3.8"]\nimportlib-metadata\n')
    (info / "top_level.txt").write_text("demo\n")
    (info / "entry_points.txt").write_text("[console_scripts]\ndemo = demo:main\n")
    return dist


def _read(wheel: str) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_make_wheel_packs_the_modules_metadata_entry_points_and_a_valid_record(
        tmp_path: Path) -> None:
    dist = _dist_packages(tmp_path)
    wheel = make_wheel(str(dist), "demo", str(tmp_path / "out"))
    assert Path(wheel).name == "demo-2.0-py3-none-any.whl"
    files = _read(wheel)
    assert sorted(files) == ["demo-2.0.dist-info/METADATA", "demo-2.0.dist-info/RECORD",
                             "demo-2.0.dist-info/WHEEL", "demo-2.0.dist-info/entry_points.txt",
                             "demo/__init__.py", "demo/sub/x.py"]  # no bytecode
    meta = files["demo-2.0.dist-info/METADATA"].decode()
    head, _, body = meta.partition("\n\n")
    assert body == "The description.\n"
    assert head.count("Provides-Extra: fast") == 1
    assert "Requires-Dist: packaging>=20" in head
    assert 'Requires-Dist: uvloop; extra == "fast"' in head
    assert 'Requires-Dist: importlib-metadata; (python_version < "3.8")' in head
    # Debian drops setuptools from the requirements; pkg_resources needs it
    assert "Requires-Dist: setuptools" in head
    assert b"Root-Is-Purelib: true" in files["demo-2.0.dist-info/WHEEL"]
    for line in files["demo-2.0.dist-info/RECORD"].decode().splitlines():
        name, digest, size = line.split(",")
        if name.endswith("RECORD"):
            continue
        data = files[name]
        assert size == str(len(data))
        assert digest == "sha256=" + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_make_wheel_is_reproducible_and_adds_setuptools_only_for_pkg_resources(
        tmp_path: Path) -> None:
    dist = _dist_packages(tmp_path / "a")
    first = Path(make_wheel(str(dist), "demo", str(tmp_path / "o1"))).read_bytes()
    second = Path(make_wheel(str(dist), "demo", str(tmp_path / "o2"))).read_bytes()
    assert first == second
    plain = _dist_packages(tmp_path / "b", pkg_resources=False)
    meta = _read(make_wheel(str(plain), "demo", str(tmp_path / "o3")))["demo-2.0.dist-info/METADATA"]
    assert b"setuptools" not in meta


def test_make_wheel_of_a_missing_distribution_says_so(tmp_path: Path) -> None:
    dist = _dist_packages(tmp_path)
    with pytest.raises(FileNotFoundError, match="no metadata of gunicorn"):
        make_wheel(str(dist), "gunicorn", str(tmp_path / "out"))


def test_populate_links_debians_pip_and_setuptools_wheels(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stackwheels, "PACKAGES", ("demo",))
    _dist_packages(tmp_path)
    debian = tmp_path / "usr/share/python-wheels"
    debian.mkdir(parents=True)
    for name in ("pip-23.0.1-py3-none-any.whl", "setuptools-66.1.1-py3-none-any.whl",
                 "other-1.0-py3-none-any.whl"):
        (debian / name).write_bytes(b"zip")
    names = populate(str(tmp_path))
    assert names == ["demo-2.0-py3-none-any.whl", "pip-23.0.1-py3-none-any.whl",
                     "setuptools-66.1.1-py3-none-any.whl"]
    house = tmp_path / "usr/share/paas/wheels"
    assert sorted(p.name for p in house.iterdir()) == names
    (debian / "pip-23.0.1-py3-none-any.whl").unlink()
    with pytest.raises(FileNotFoundError, match="no Debian wheel of pip"):
        populate(str(tmp_path))


def test_hooks_reach_mmdebstrap_and_only_customize_hooks_are_accepted() -> None:
    hooks = customize_hooks("/usr/bin/python3")
    assert hooks == [f"--customize-hook=/usr/bin/python3 {stackwheels.__file__} \"$1\""]
    argv = mmdebstrap_argv("bookworm", ["python3"], "/o.tar", hooks=hooks)
    assert argv[-3:] == [hooks[0], "bookworm", "/o.tar"]
    with pytest.raises(InvalidArgument, match="hook"):
        mmdebstrap_argv("bookworm", [], "/o.tar", hooks=["--setup-hook=rm -rf /"])


def test_a_path_with_spaces_is_quoted_in_the_hook() -> None:
    assert customize_hooks("/opt/my python/bin/python3")[0].startswith(
        "--customize-hook='/opt/my python/bin/python3' ")


def test_the_stack_key_follows_the_packages() -> None:
    assert stack_key(("a", "b")) != stack_key(("a", "c"))
    assert len(stack_key(("a",))) == 8
