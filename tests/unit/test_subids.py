"""The subordinate-id pool: parsing subuid(5) files, both files' common ids, slots."""

from __future__ import annotations

import pytest

from paas.errors import FailedPrecondition
from paas.model import IdMap
from paas.subids import (
    SLOT_SIZE,
    SubidRange,
    intersect,
    merge,
    overlaps,
    parse_subid,
    pool_from_text,
    slots,
)


def test_parse_skips_comments_and_blank_lines() -> None:
    text = "# reserved\n\nalice:100000:65536\nroot:1000000:1000000000\n"
    assert parse_subid(text) == [("alice", SubidRange(100000, 65536)),
                                 ("root", SubidRange(1000000, 1000000000))]


@pytest.mark.parametrize("line", ["root:1000000", "root:x:65536", ":1:2", "root:1:0",
                                  "root:-1:65536", "root:1:2:3"])
def test_parse_rejects_malformed_lines_naming_them(line: str) -> None:
    with pytest.raises(FailedPrecondition) as e:
        parse_subid(f"alice:100000:65536\n{line}\n", "/tmp/subuid")
    assert e.value.message.startswith("/tmp/subuid:2:")
    assert "subuid(5)" in e.value.hint


def test_merge_joins_overlapping_and_adjacent_ranges() -> None:
    assert merge([SubidRange(10, 5), SubidRange(0, 10), SubidRange(12, 10),
                  SubidRange(40, 1)]) == [SubidRange(0, 22), SubidRange(40, 1)]


def test_intersect_keeps_only_common_ids() -> None:
    a = [SubidRange(0, 100), SubidRange(200, 100)]
    b = [SubidRange(50, 200)]
    assert intersect(a, b) == [SubidRange(50, 50), SubidRange(200, 50)]
    assert intersect(a, []) == []


def test_pool_is_the_users_ids_in_both_files() -> None:
    uid = "alice:100000:65536\nroot:1000000:655360\n"
    gid = "root:1065536:1000000\nalice:1000000:65536\n"
    assert pool_from_text(uid, gid) == [SubidRange(1065536, 589824)]
    assert pool_from_text(uid, gid, "alice") == []
    assert pool_from_text(uid, "", "root") == []


def test_slots_are_whole_aligned_and_skip_the_default_range() -> None:
    pool = [SubidRange(100000, 4 * SLOT_SIZE + 10)]
    default = IdMap(0, 100000 + SLOT_SIZE, SLOT_SIZE)
    assert slots(pool, (default,)) == [100000, 100000 + 2 * SLOT_SIZE, 100000 + 3 * SLOT_SIZE]
    # a default range straddling two slots takes both out
    straddle = IdMap(0, 100000 + SLOT_SIZE // 2, SLOT_SIZE)
    assert slots(pool, (straddle,)) == [100000 + 2 * SLOT_SIZE, 100000 + 3 * SLOT_SIZE]
    assert slots([SubidRange(0, 2 * SLOT_SIZE)]) == [SLOT_SIZE]  # never host root's id 0
    assert slots([SubidRange(5, SLOT_SIZE - 1)]) == []


def test_no_two_slots_overlap() -> None:
    pool = merge([SubidRange(1000000, 10 * SLOT_SIZE), SubidRange(1000000 + 3, 7 * SLOT_SIZE)])
    starts = slots(pool)
    maps = [IdMap(0, s, SLOT_SIZE) for s in starts]
    assert len(maps) == 10
    assert not any(overlaps(a, b) for i, a in enumerate(maps) for b in maps[i + 1:])


def test_overlaps() -> None:
    assert overlaps(IdMap(0, 100, 10), SubidRange(109, 1))
    assert not overlaps(IdMap(0, 100, 10), SubidRange(110, 5))
    assert not overlaps(SubidRange(0, 100), IdMap(0, 100, 1))
