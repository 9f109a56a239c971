"""Pure prune planning over the image graph and real disk usage accounting."""

from __future__ import annotations

import os
from pathlib import Path

from paas.image.prune import (
    CacheEntry,
    ImageNode,
    assign_blobs,
    exclusive_size,
    over_cap,
    plan_images,
    unreferenced,
)
from paas.image.usage import UsageCache, disk_usage, file_usage, human_size

BASE = ImageNode("m-base", "c-base", ("l1",), ("ch1",), ("debian:bookworm",))
APP1 = ImageNode("m-app1", "c-app1", ("l1", "l2"), ("ch1", "ch2"), ("paas-apps/a:v1",))
APP2 = ImageNode("m-app2", "c-app2", ("l1", "l3"), ("ch1", "ch3"), ("paas-apps/a:v2",))
SIZES = {"m-base": 1, "c-base": 2, "l1": 1000, "m-app1": 1, "c-app1": 2, "l2": 50,
         "m-app2": 1, "c-app2": 2, "l3": 70}


def test_a_removed_image_frees_only_the_blobs_no_kept_image_uses() -> None:
    plan = plan_images([BASE, APP1, APP2], keep={"m-base", "m-app2"})
    assert plan.remove == ("m-app1",)
    assert plan.freed_blobs == {"m-app1", "c-app1", "l2"}  # l1 is shared with kept ones
    assert plan.kept_chains == {"ch1", "ch3"}  # ch2's snapshot can go


def test_keeping_nothing_frees_everything() -> None:
    plan = plan_images([BASE, APP1], keep=set())
    assert set(plan.remove) == {"m-base", "m-app1"}
    assert plan.freed_blobs == set(BASE.blobs) | set(APP1.blobs)
    assert plan.kept_chains == frozenset()


def test_unreferenced_blobs_and_exclusive_sizes() -> None:
    assert unreferenced(["l1", "l2", "orphan"], [BASE, APP1]) == {"orphan"}
    assert exclusive_size({"m-app1"}, [BASE, APP1, APP2], SIZES) == 53
    assert exclusive_size({"m-app1", "m-app2", "m-base"}, [BASE, APP1, APP2], SIZES) \
        == sum(SIZES.values())


def test_assign_blobs_counts_each_blob_once_for_the_newest_owner() -> None:
    step2 = ImageNode("m-s2", "c-s2", ("l1", "l2", "l4"))
    step1 = ImageNode("m-s1", "c-s1", ("l1", "l2"))
    sizes = {**SIZES, "l4": 300, "m-s1": 1, "c-s1": 1, "m-s2": 1, "c-s2": 1}
    out = assign_blobs([step2, step1], others=[BASE], sizes=sizes)
    assert out == {"m-s2": 1 + 1 + 50 + 300, "m-s1": 2}  # l1 is the kept base's


def test_over_cap_drops_least_recently_used_first() -> None:
    entries = [CacheEntry("new", 30.0, 100), CacheEntry("old", 10.0, 100),
               CacheEntry("mid", 20.0, 100)]
    assert over_cap(entries, 300) == []
    assert over_cap(entries, 250) == ["old"]
    assert over_cap(entries, 100) == ["old", "mid"]
    assert over_cap(entries, 0) == ["old", "mid", "new"]


def test_disk_usage_counts_allocated_blocks_and_hard_links_once(tmp_path: Path) -> None:
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "data").write_bytes(b"x" * 100_000)
    os.link(d / "sub" / "data", d / "hardlink")
    with open(d / "sparse", "wb") as f:
        f.truncate(50_000_000)  # a hole: no blocks
    os.symlink("/etc", d / "link")
    files = {p: os.lstat(p).st_blocks * 512 for p in (d, d / "sub", d / "sub" / "data",
                                                       d / "sparse", d / "link")}
    assert disk_usage(str(d)) == sum(files.values())
    assert disk_usage(str(d)) < 1_000_000
    assert disk_usage(str(tmp_path / "missing")) == 0
    assert file_usage(str(d / "sub" / "data")) >= 100_000
    assert disk_usage(str(d), skip_prefix=("spar", "nothing")) == disk_usage(str(d)) \
        - files[d / "sparse"]


def test_usage_cache_walks_once_per_stamp(tmp_path: Path) -> None:
    tree = tmp_path / "snap"
    tree.mkdir()
    (tree / "f").write_bytes(b"y" * 8192)
    cache_file = str(tmp_path / "cache.json")
    c = UsageCache(cache_file)
    first = c.get("host/1", "1.0", str(tree))
    c.save()
    (tree / "g").write_bytes(b"z" * 100_000)  # a committed snapshot never changes: cached
    assert UsageCache(cache_file).get("host/1", "1.0", str(tree)) == first
    assert UsageCache(cache_file).get("host/1", "2.0", str(tree)) > first  # a new stamp
    c2 = UsageCache(cache_file)
    c2.save(keep=set())
    assert Path(cache_file).read_text() == "{}"
    Path(cache_file).write_text("{torn")
    assert UsageCache(cache_file).get("host/1", "1.0", str(tree)) > first


def test_human_size_like_docker() -> None:
    assert [human_size(n) for n in (512, 1500, 74_800_000, 1.2e9, 3.4e12)] == \
        ["512B", "1.5kB", "74.8MB", "1.2GB", "3.4TB"]
