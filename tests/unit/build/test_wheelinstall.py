"""The Python buildpack's wheel unpacker (buildpacks/python/lib/wheelinstall.py) on wheels
made here, into a fake site-packages in a temp dir: files, scripts, RECORD, the
resolution of requirements within a directory, and refused entries."""

from __future__ import annotations

import csv
import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "buildpacks" / "python" / "lib" / "wheelinstall.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheelinstall", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wi = _module()


def _wheel(directory: Path, name: str, version: str = "1.0", *, requires: tuple[str, ...] = (),
           extra: dict[str, bytes] | None = None, scripts: str = "") -> Path:
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires) + "\nbody\n"
    files = {f"{name}/__init__.py": b"X = 1\n", f"{info}/METADATA": meta.encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\n", f"{info}/RECORD": b"stale\n",
             **(extra or {})}
    if scripts:
        files[f"{info}/entry_points.txt"] = scripts.encode()
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path


@pytest.fixture
def venv(tmp_path: Path) -> tuple[Path, Path]:
    site, bindir = tmp_path / "venv/lib/site-packages", tmp_path / "venv/bin"
    site.mkdir(parents=True)
    bindir.mkdir(parents=True)
    return site, bindir


def test_install_unpacks_writes_scripts_and_a_record(tmp_path: Path,
                                                     venv: tuple[Path, Path]) -> None:
    site, bindir = venv
    wheel = _wheel(tmp_path, "demo", scripts="[console_scripts]\ndemo = demo.cli:main\n",
                   extra={"demo-1.0.data/scripts/tool": b"#!python\nprint(1)\n"})
    assert wi.install(str(wheel), str(site), str(bindir), "/app/.venv/bin/python") == "demo"
    assert (site / "demo" / "__init__.py").read_bytes() == b"X = 1\n"
    script = (bindir / "demo").read_text()
    assert script.startswith("#!/app/.venv/bin/python\n")
    assert "from demo.cli import main" in script and "sys.exit(main())" in script
    assert (bindir / "tool").read_bytes() == b"#!/app/.venv/bin/python\nprint(1)\n"
    assert (bindir / "demo").stat().st_mode & 0o111
    assert (site / "demo-1.0.dist-info" / "INSTALLER").read_text() == "paas\n"
    with open(site / "demo-1.0.dist-info" / "RECORD", newline="") as f:
        rows = {row[0]: row for row in csv.reader(f)}
    assert {"demo/__init__.py", "../../bin/demo", "../../bin/tool",
            "demo-1.0.dist-info/RECORD"} <= set(rows)
    assert rows["demo/__init__.py"][2] == "6" and rows["demo-1.0.dist-info/RECORD"][1] == ""


def test_an_installed_distribution_is_left_alone(tmp_path: Path,
                                                 venv: tuple[Path, Path]) -> None:
    site, bindir = venv
    (site / "Demo-2.0.dist-info").mkdir()  # the app's own, another spelling
    assert wi.install(str(_wheel(tmp_path, "demo")), str(site), str(bindir), "/p") == ""
    assert not (site / "demo").exists()


@pytest.mark.parametrize("member", ["../evil.py", "/abs.py", "demo/../../x.py"])
def test_entries_outside_site_packages_are_refused(tmp_path: Path, venv: tuple[Path, Path],
                                                   member: str) -> None:
    site, bindir = venv
    wheel = _wheel(tmp_path, "demo", extra={member: b"x"})
    with pytest.raises(SystemExit, match="refusing"):
        wi.install(str(wheel), str(site), str(bindir), "/p")
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "venv" / "x.py").exists()


def test_resolve_puts_requirements_first_and_skips_installed_or_conditional(
        tmp_path: Path, venv: tuple[Path, Path]) -> None:
    site, _ = venv
    house = tmp_path / "house"
    house.mkdir()
    _wheel(house, "gunicorn", requires=("setuptools", 'eventlet; extra == "eventlet"'))
    _wheel(house, "setuptools", "66.1")
    assert [Path(w).name for w in wi.resolve(["gunicorn"], str(house), str(site))] == [
        "setuptools-66.1-py3-none-any.whl", "gunicorn-1.0-py3-none-any.whl"]
    (site / "setuptools-70.0.dist-info").mkdir()
    assert [Path(w).name for w in wi.resolve(["gunicorn"], str(house), str(site))] == [
        "gunicorn-1.0-py3-none-any.whl"]
    with pytest.raises(SystemExit, match="no wheel of flask"):
        wi.resolve(["flask"], str(house), str(site))
