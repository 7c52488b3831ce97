"""The CRM mirror: every lead that carries an Adobe visitor id, sorted by that id, in compressed
chunks in the state bucket - and the streaming merge join that answers lookups from it.

Layout (``mirror/`` in the state bucket; ``crm/`` holds only what users put there)::

    index.json                          generation, chunks (first/last id, rows), watermark
    g<generation>/chunk-NNNNN.jsonl.gz  sorted JSON lines: [visitor id, {field: value}]

Merging an extract never rewrites the mirror in place: the new generation's chunks are
written first, then ``index.json`` points at them (a crash leaves the old mirror whole). The
newest record per visitor id wins. Memory holds one chunk row per input stream and one sort
run while an extract is sorted; never the CRM.
"""

from __future__ import annotations

import bisect
import gzip
import heapq
import itertools
import json
import logging
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import IO, Any

from feedsync.storage import ObjectStore, get_json, put_json

logger = logging.getLogger(__name__)

PREFIX = "mirror/"
CHUNK_ROWS = 200_000
SORT_RUN_ROWS = 100_000  # one sort run in memory (~60 MB of records)

Record = tuple[str, dict[str, str]]  # visitor id, fields


@dataclass
class MirrorIndex:
    id_field: str
    fields: list[str]
    generation: int = 0
    chunks: list[dict[str, Any]] = field(default_factory=list)  # key, first, last, rows
    watermark: str = ""  # the end of the last window merged (ISO 8601)
    filter: str = "updatedAt"  # createdAt when the subscription cannot filter on updatedAt
    rows: int = 0
    pending: dict[str, Any] | None = None  # an export created or running: {export_id, ...}

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MirrorIndex:
        return cls(**data)


def _read_chunk(raw: IO[bytes]) -> Iterator[Record]:
    with gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            visitor, values = json.loads(line)
            yield visitor, values


def _read_lines(raw: IO[bytes]) -> Iterator[tuple[str, str]]:
    """(visitor id, the whole line) of each row: only the id is decoded (the join's hot loop)."""
    with gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith('["'):
                raise ValueError(f"mirror chunk row is not [id, fields]: {line[:40]!r}")
            visitor, _ = scanstring(line, 2)
            yield visitor, line


class ChunkWriter:
    """Sorted records into gzip JSON-lines chunks of ``chunk_rows`` rows, in one store. Each
    record is serialised and compressed as it is added: memory holds compressed bytes, not rows."""

    def __init__(self, store: ObjectStore, prefix: str, chunk_rows: int) -> None:
        self.store, self.prefix, self.chunk_rows = store, prefix, chunk_rows
        self.chunks: list[dict[str, Any]] = []
        self._open()

    def _open(self) -> None:
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing, fast level
        self._parts: list[bytes] = []
        self._first, self._last, self._rows = "", "", 0

    def add(self, record: Record) -> None:
        line = json.dumps([record[0], record[1]], separators=(",", ":")) + "\n"
        self._parts.append(self._deflate.compress(line.encode("utf-8")))
        self._first = self._first or record[0]
        self._last, self._rows = record[0], self._rows + 1
        if self._rows >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        key = f"{self.prefix}chunk-{len(self.chunks):05d}.jsonl.gz"
        data = b"".join([*self._parts, self._deflate.flush()])
        self.store.put(key, data, "application/gzip")
        self.chunks.append({"key": key, "first": self._first, "last": self._last,
                            "rows": self._rows})  # fmt: skip
        self._open()


def _sorted_runs(records: Iterable[Record], tmp: str, run_rows: int) -> list[str]:
    """External sort, step one: sorted runs on local disk (JSON lines, gzip)."""
    runs: list[str] = []
    it = iter(records)
    while chunk := list(itertools.islice(it, run_rows)):
        chunk.sort(key=lambda r: r[0])  # stable: a later record of one id stays later
        path = os.path.join(tmp, f"run-{len(runs):05d}.jsonl.gz")
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
            out.writelines(json.dumps([v, f]) + "\n" for v, f in chunk)
        runs.append(path)
    return runs


def _read_run(path: str) -> Iterator[Record]:
    with open(path, "rb") as raw:
        yield from _read_chunk(raw)


def sort_records(
    records: Iterable[Record], tmp: str, run_rows: int = SORT_RUN_ROWS
) -> Iterator[Record]:
    """All records in id order, newest last within an id (memory: one run)."""
    runs = _sorted_runs(records, tmp, run_rows)
    # a k-way merge ordered by (id, run number, position) keeps "later wins" across runs
    streams = [_numbered(n, path) for n, path in enumerate(runs)]
    for visitor, _, _, values in heapq.merge(*streams):
        yield visitor, values


def _numbered(run: int, path: str) -> Iterator[tuple[str, int, int, dict[str, Any]]]:
    for position, (visitor, values) in enumerate(_read_run(path)):
        yield visitor, run, position, values


def one_per_id(records: Iterable[Record], keep: str = "last") -> Iterator[Record]:
    """One record per id from an id-ordered stream: the last of each id (the newest), or the
    first (a CRM export: the first lead wins, as with Marketo's lookups)."""
    for visitor, group in itertools.groupby(records, key=lambda r: r[0]):
        if keep == "first":
            yield next(group)
        else:
            *_, last = group
            yield visitor, last[1]


class Mirror:
    def __init__(
        self, store: ObjectStore, id_field: str, fields: Sequence[str], prefix: str = PREFIX
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.id_field = id_field
        self.fields = [f for f in dict.fromkeys(fields) if f != id_field]
        data = get_json(store, f"{prefix}index.json")
        self.index = MirrorIndex(id_field, self.fields)
        if data and data.get("id_field") == id_field and data.get("fields") == self.fields:
            self.index = MirrorIndex.from_json(data)
        elif data:  # the mapping asks for other fields: walk the CRM again from the start
            logger.warning("the mapping's CRM fields changed: the mirror is built again")

    def records(self) -> Iterator[Record]:
        for chunk in self.index.chunks:
            yield from _read_chunk(self.store.open(chunk["key"]))

    def merge(
        self, extract: Iterable[Record], watermark: str, chunk_rows: int = CHUNK_ROWS
    ) -> MirrorIndex:
        """Merge an extract (any order; later records newer) into a new generation."""
        generation = self.index.generation + 1
        writer = ChunkWriter(self.store, f"{self.prefix}g{generation:06d}/", chunk_rows)
        with tempfile.TemporaryDirectory(prefix="feedsync-mirror-") as tmp:
            fresh = (r for r in extract if r[0])  # leads without a visitor id are not joinable
            incoming = sort_records(fresh, tmp)
            # (id, 0) for the mirror, (id, 1) for the extract: on one id the extract comes last
            old = ((v, 0, f) for v, f in self.records())
            new = ((v, 1, f) for v, f in incoming)
            merged = ((v, f) for v, _, f in heapq.merge(old, new, key=lambda r: (r[0], r[1])))
            rows = 0
            for record in one_per_id(merged):
                writer.add(record)
                rows += 1
            writer.flush()
        old_chunks = [c["key"] for c in self.index.chunks]
        self.index = MirrorIndex(self.id_field, self.index.fields, generation, writer.chunks,
                                 watermark, self.index.filter, rows, None)  # fmt: skip
        put_json(self.store, f"{self.prefix}index.json", self.index.to_json())  # the switch
        for key in old_chunks:  # the previous generation is no longer referenced
            self.store.delete(key)
        return self.index

    def save(self) -> None:
        put_json(self.store, f"{self.prefix}index.json", self.index.to_json())


class MirrorJoin:
    """Lookups answered by walking the sorted mirror alongside sorted ids (a merge join).

    Successive lookups usually ask for ascending ids (the batches of a sorted stream): the
    cursor only moves forward, and a chunk no id falls in is skipped unread. An id below the
    last one asked for (a resumed batch) re-positions it with the chunk index. Memory: one
    chunk row; a row's fields are decoded only when its id is asked for.
    """

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror
        self.firsts = [c["first"] for c in mirror.index.chunks]
        self._chunk = -1
        self._rows: Iterator[tuple[str, str]] = iter(())
        self._current: tuple[str, str] | None = None
        self._last: str | None = None  # the highest id asked for so far

    def _open(self, chunk: int) -> None:
        self._chunk = chunk
        key = self.mirror.index.chunks[chunk]["key"]
        self._rows = _read_lines(self.mirror.store.open(key))
        self._current = next(self._rows, None)

    def _advance(self) -> None:
        self._current = next(self._rows, None)
        while self._current is None and self._chunk + 1 < len(self.firsts):
            self._open(self._chunk + 1)

    def _seek(self, visitor: str) -> None:
        """Put the cursor at or before ``visitor``'s place, opening a chunk only when needed."""
        if not self.firsts:
            return
        target = max(0, bisect.bisect_right(self.firsts, visitor) - 1)
        behind = self._last is not None and visitor < self._last
        if self._chunk == -1 or behind or target > self._chunk:
            self._open(target)
        self._last = visitor

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for visitor in sorted(set(ids)):
            self._seek(visitor)
            while self._current is not None and self._current[0] < visitor:
                self._advance()
            if self._current is not None and self._current[0] == visitor:
                values = json.loads(self._current[1])[1]
                found[visitor] = {self.mirror.id_field: visitor, **values}
        return found
