"""Visitor streams are written in gzip members with an index, so a run resumes from the member
its cursor falls in: the bytes read do not grow with how far the day has got (issue 26)."""

from __future__ import annotations

import gzip
from typing import Any

from feedsync.parse.results import MEMBER_IDS, read_visitors, write_visitors
from feedsync.storage import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.read_from: list[int] = []

    def open(self, key: str, start: int = 0) -> Any:
        self.read_from.append(start)
        return super().open(key, start)


def _ids(n: int) -> list[str]:
    return [f"{v:038d}" for v in range(10**37, 10**37 + n * 7, 7)]


def test_a_stream_is_read_whole_by_any_gzip_reader_and_from_its_index() -> None:
    store = CountingStore()
    ids = _ids(3 * MEMBER_IDS + 5)
    index = write_visitors(store, "s.gz", ids[::2], ids[1::2])
    assert len(index) == 4 and index[0] == (ids[0], 0)
    raw = store.objects["s.gz"]
    assert gzip.decompress(raw).count(b"\n") == len(ids)  # the members, one after the other
    assert [v for v, _ in read_visitors(store, "s.gz")] == ids


def test_a_resume_reads_from_the_member_holding_the_cursor_not_the_start() -> None:
    store = CountingStore()
    ids = _ids(4 * MEMBER_IDS)
    index = write_visitors(store, "s.gz", ids, [])
    cursor = ids[3 * MEMBER_IDS + 10]
    after = [v for v, state in read_visitors(store, "s.gz", cursor, index)]
    assert after == ids[3 * MEMBER_IDS + 11 :]
    assert store.read_from[-1] == index[3][1] > 0  # the fourth member's offset
    # the same from the start (no index): the same ids, read from byte 0
    assert [v for v, _ in read_visitors(store, "s.gz", cursor)] == after
    assert store.read_from[-1] == 0


def test_a_cursor_before_the_first_member_or_after_the_last_reads_the_right_ids() -> None:
    store = CountingStore()
    ids = _ids(MEMBER_IDS + 3)
    index = write_visitors(store, "s.gz", ids, [])
    assert [v for v, _ in read_visitors(store, "s.gz", "0", index)] == ids
    assert list(read_visitors(store, "s.gz", ids[-1], index)) == []
    empty = write_visitors(store, "e.gz", [], [])
    assert empty == [] and list(read_visitors(store, "e.gz", "5", empty)) == []
