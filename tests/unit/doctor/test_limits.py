"""``paas report``'s limits verdicts (pure)."""

from __future__ import annotations

from paas.doctor.limits import memory_cap_check, oom_check

GB = 1 << 30


def test_memory_cap_verdicts() -> None:
    ok = memory_cap_check("paas-x", True, 20 * GB, 20 * GB, 24 * GB)
    assert ok.ok and ok.value.startswith("21.5GB of 25.8GB")
    missing = memory_cap_check("paas-x", False, None, 20 * GB, 24 * GB)
    assert not missing.ok and "report --fix" in missing.fix
    unlimited = memory_cap_check("paas-x", True, None, 20 * GB, 24 * GB)
    assert not unlimited.ok and unlimited.value.startswith("unlimited")
    other = memory_cap_check("paas-x", True, 30 * GB, 20 * GB, 24 * GB)
    assert not other.ok
    rounded = memory_cap_check("paas-x", True, 20 * GB - 4096, 20 * GB, 24 * GB)
    assert rounded.ok
    off = memory_cap_check("paas-x", True, None, None, 24 * GB)
    assert not off.ok and off.warning


def test_oom_verdicts() -> None:
    assert oom_check("paasd", -500, -500).ok
    assert oom_check("paasd", None, -500).ok  # not running: the services section says it
    weak = oom_check("paasd", 0, -500)
    assert not weak.ok and weak.warning and "CAP_SYS_RESOURCE" in weak.problem
    bad = oom_check("paasd", 500, -500)
    assert not bad.ok and not bad.warning
