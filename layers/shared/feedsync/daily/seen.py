"""Visitors settled recently, kept as sorted objects in S3 and merged with the pending stream,
so they cost no DynamoDB read or write (issue 26: "the ledger only where it pays").

Two kinds, per report suite and day (UTC):

- ``miss``: the visitors a batch looked up in a CRM where a lookup costs a call (Marketo) and
  did not find (or whose record the mapping refused): not looked up again for
  ``LedgerMissTtlDays``. Written by the walk, one sorted chunk per batch, with an index per
  walk: ``seen/<rsid>/miss/<day>/<walk>.index``.
- ``accepted-<destination>``: the visitors of a file Adobe accepted (the file's own sorted
  visitor list in ``uploads/``): a visitor accepted at every destination a batch serves is
  settled without a ledger read for ``SEEN_ACCEPTED_DAYS``. Indexed by reconciliation (one
  writer: its lock) in ``seen/<rsid>/accepted-<destination>/<day>.index``.

An index is a JSON list of ``[first id, last id, key]``; a batch (a contiguous range of the
sorted pending stream) reads only the chunks whose range overlaps its own. Beyond these days
the ledger answers, as before: a skip is a saving, never the truth (the ledger and the file
records are).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence

from feedsync.parse.results import escape_id
from feedsync.storage import ObjectStore, get_json

PREFIX = "seen/"
SEEN_ACCEPTED_DAYS = 7
MAX_CHUNKS = 256  # chunks kept read in one invocation (adjacent batches share them)
Chunk = tuple[str, str, str]  # first, last, key


def _day(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).date().isoformat()


def miss_index(rsid: str, day: str, walk: str) -> str:
    return f"{PREFIX}{rsid}/miss/{day}/{walk}.index"


def accepted_index(rsid: str, destination: str, day: str) -> str:
    return f"{PREFIX}{rsid}/accepted-{destination}/{day}.index"


def _read_ids(state: ObjectStore, key: str) -> set[str]:
    from feedsync.daily.send import read_visitors

    return set(read_visitors(state, key))


def _index(state: ObjectStore, key: str) -> list[Chunk]:
    data = get_json(state, key) or {}
    return [(str(a), str(b), str(c)) for a, b, c in data.get("chunks", [])]


def _add(state: ObjectStore, key: str, chunk: Chunk) -> None:
    chunks = _index(state, key)
    if chunk not in chunks:
        chunks.append(chunk)
        state.put(key, json.dumps({"chunks": chunks}).encode(), "application/json")


def record_misses(
    state: ObjectStore, rsid: str, walk: str, number: int, ids: Sequence[str], now: dt.datetime
) -> None:
    """A batch's misses, as one sorted chunk and an entry in its walk's index of the day."""
    if not ids:
        return
    ordered = sorted(set(ids))
    day = _day(now)
    key = f"{PREFIX}{rsid}/miss/{day}/{walk}-{number:05d}.ids"
    state.put(key, "".join(escape_id(v) + "\n" for v in ordered).encode(), "text/plain")
    _add(state, miss_index(rsid, day, walk), (ordered[0], ordered[-1], key))


def record_accepted(
    state: ObjectStore, rsid: str, destination: str, visitors_key: str, now: dt.datetime
) -> None:
    """A file Adobe accepted: its (sorted) visitor list joins the day's accepted index."""
    from feedsync.daily.send import read_visitors

    visitors = read_visitors(state, visitors_key)
    if visitors:
        chunk = (min(visitors), max(visitors), visitors_key)
        _add(state, accepted_index(rsid, destination, _day(now)), chunk)


class Seen:
    """What the recent chunks say of a batch's ids: read once per invocation (the indexes) and
    per overlapping chunk."""

    def __init__(
        self,
        state: ObjectStore,
        rsid: str,
        now: dt.datetime,
        miss_days: int,
        accepted_days: int = SEEN_ACCEPTED_DAYS,
        list_keys: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.state = state
        self.rsid = rsid
        days = [_day(now - dt.timedelta(days=n)) for n in range(max(miss_days, accepted_days))]
        self.miss_days = days[:miss_days]
        self.accepted_days = days[:accepted_days]
        self._misses: list[Chunk] | None = None
        self._accepted: dict[str, list[Chunk]] = {}
        self._chunks: dict[str, set[str]] = {}

    def _miss_chunks(self) -> list[Chunk]:
        if self._misses is None:
            self._misses = []
            for day in self.miss_days:
                for key in self.state.list(f"{PREFIX}{self.rsid}/miss/{day}/"):
                    if key.endswith(".index"):
                        self._misses.extend(_index(self.state, key))
        return self._misses

    def _accepted_chunks(self, destination: str) -> list[Chunk]:
        if destination not in self._accepted:
            self._accepted[destination] = [
                chunk
                for day in self.accepted_days
                for chunk in _index(self.state, accepted_index(self.rsid, destination, day))
            ]
        return self._accepted[destination]

    def _in(self, chunks: list[Chunk], ids: Sequence[str]) -> set[str]:
        if not ids or not chunks:
            return set()
        low, high = min(ids), max(ids)
        wanted = set(ids)
        out: set[str] = set()
        for first, last, key in chunks:
            if first > high or last < low:
                continue
            if key not in self._chunks:
                if len(self._chunks) >= MAX_CHUNKS:
                    self._chunks.pop(next(iter(self._chunks)))
                self._chunks[key] = _read_ids(self.state, key)
            out |= wanted & self._chunks[key]
        return out

    def misses(self, ids: Sequence[str]) -> set[str]:
        return self._in(self._miss_chunks(), ids)

    def accepted(self, ids: Sequence[str], destinations: Sequence[str]) -> set[str]:
        """Ids accepted at every one of ``destinations`` in the last days."""
        out: set[str] | None = None
        for destination in destinations:
            found = self._in(self._accepted_chunks(destination), ids)
            out = found if out is None else out & found
            if not out:
                return set()
        return out or set()
