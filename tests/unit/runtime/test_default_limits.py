"""Default limits: settings parsing, the pids default, the containers' memory cap."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.model import DefaultLimits, Resources
from paas.runtime.limits import containers_memory_cap, effective_resources, limits_from_env
from paas.runtime.options import parse_resources

GIB = 1 << 30


def test_defaults_without_settings() -> None:
    d = limits_from_env({})
    assert d == DefaultLimits()
    assert (d.pids, d.app_disk, d.build_disk) == (4096, 10 * GIB, 10 * GIB)


def test_settings_parse_and_max_disables() -> None:
    d = limits_from_env({"PAAS_PIDS_LIMIT": "512", "PAAS_APP_DISK_LIMIT": "2G",
                         "PAAS_BUILD_DISK_LIMIT": "max", "PAAS_MEMORY_RESERVE": "2g,20%",
                         "PAAS_CONTAINERS_MEMORY": "300m"})
    assert (d.pids, d.app_disk, d.build_disk) == (512, 2 * GIB, None)
    assert (d.memory_reserve, d.memory_reserve_pct, d.containers_memory) == (2 * GIB, 20,
                                                                             300 << 20)
    assert limits_from_env({"PAAS_PIDS_LIMIT": "max"}).pids is None
    assert limits_from_env({"PAAS_CONTAINERS_MEMORY": "max"}).containers_memory == 0
    assert limits_from_env({"PAAS_MEMORY_RESERVE": "15%"}).memory_reserve == 0


@pytest.mark.parametrize("key,value", [
    ("PAAS_PIDS_LIMIT", "lots"), ("PAAS_PIDS_LIMIT", "3"), ("PAAS_APP_DISK_LIMIT", "1m"),
    ("PAAS_BUILD_DISK_LIMIT", "big"), ("PAAS_MEMORY_RESERVE", "95%"),
    ("PAAS_MEMORY_RESERVE", "1g,x"), ("PAAS_CONTAINERS_MEMORY", "1m"),
])
def test_bad_settings_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(InvalidArgument, match=key):
        limits_from_env({key: value})


def test_pids_default_fills_only_unset() -> None:
    d = DefaultLimits(pids=4096)
    assert effective_resources(Resources(), d).pids_limit == 4096
    assert effective_resources(Resources(pids_limit=10), d).pids_limit == 10
    assert effective_resources(Resources(pids_limit=-1), d).pids_limit == -1
    assert effective_resources(Resources(), DefaultLimits(pids=None)).pids_limit is None


def test_pids_limit_flag_minus_one_and_zero_are_unlimited() -> None:
    assert parse_resources(None, None, None, "-1").pids_limit == -1
    assert parse_resources(None, None, None, "0").pids_limit == -1
    with pytest.raises(InvalidArgument, match="--pids-limit"):
        parse_resources(None, None, None, "-2")


def test_memory_cap_keeps_the_larger_reserve() -> None:
    d = DefaultLimits()
    assert containers_memory_cap(24 * GIB, d) == 24 * GIB - 24 * GIB // 10  # 10 % > 1 GiB
    assert containers_memory_cap(4 * GIB, d) == 3 * GIB  # 1 GiB > 10 %
    assert containers_memory_cap(4 * GIB, DefaultLimits(containers_memory=200 << 20)) == 200 << 20
    assert containers_memory_cap(4 * GIB, DefaultLimits(containers_memory=0)) is None
    assert containers_memory_cap(512 << 20, d) == 64 << 20  # never a cap nothing fits in
