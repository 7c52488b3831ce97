"""The CRM as the pipeline sees it: visitor ids in, CRM records out."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Protocol

from feedsync.crm.marketo import MarketoClient
from feedsync.crm.mirror import (
    CHUNK_ROWS,
    ChunkWriter,
    Mirror,
    MirrorJoin,
    Record,
    one_per_id,
    sort_records,
)
from feedsync.crm.mirror_sync import MirrorSync
from feedsync.deadline import Deadline
from feedsync.errors import ConfigError
from feedsync.storage import LocalStore


class CrmSource(Protocol):
    name: str
    # True when a lookup costs CRM calls (Marketo's API): misses are then remembered in the
    # ledger for the miss TTL. A mirror or export join is free to repeat.
    lookups_cost_calls: bool

    def prepare(
        self, deadline: Deadline, needed: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        """Get ready for a run (the mirror syncs when it is older than ``needed``, the moment
        the run's deliveries need it to cover, or than its sync interval); a report, or None."""
        ...

    @property
    def calls(self) -> int:
        """Calls made to the CRM so far (0 for a file)."""
        ...

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Visitor id -> CRM record, for those of ``ids`` the CRM knows."""
        ...

    def staleness(self, as_of: dt.datetime) -> str | None:
        """Why a miss is not final for visitors seen up to ``as_of`` (the copy is older), or
        None when the source covers that moment."""
        ...


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class MarketoSource:
    name = "marketo"
    lookups_cost_calls = True

    def __init__(
        self, client: MarketoClient, id_field: str, fields: Sequence[str], workers: int = 1
    ) -> None:
        self.client = client
        self.id_field = id_field
        self.fields = list(dict.fromkeys(fields))
        self.workers = workers

    @property
    def calls(self) -> int:
        return self.client.stats.calls

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.client.lookup(self.id_field, ids, self.fields, workers=self.workers)

    def prepare(
        self, deadline: Deadline, needed: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        return None

    def staleness(self, as_of: dt.datetime) -> str | None:
        return None  # asked live


class FileSource:
    """A CSV (header row) or JSON Lines export holding the visitor id field and CRM fields.

    The export is read once, as a stream, and sorted by visitor id on local disk (an external
    sort into a local mirror); lookups are a merge join against it. Memory does not grow with
    the export. The first record of a visitor id wins, as with Marketo's own lookups.
    """

    name = "file"
    calls = 0
    lookups_cost_calls = False

    def __init__(
        self,
        data: bytes | BinaryIO,
        where: str,
        id_field: str,
        fields: Sequence[str],
        as_of: dt.datetime | None = None,
    ) -> None:
        self.where = where
        self.as_of = as_of  # when the export was written (S3 LastModified, file mtime)
        self.id_field = id_field
        self.fields = [f for f in dict.fromkeys(fields) if f != id_field]
        raw = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        self._tmp = tempfile.TemporaryDirectory(prefix="feedsync-crm-file-")
        store = LocalStore(self._tmp.name)
        self.mirror = Mirror(store, id_field, self.fields)
        self.rows = self._build(raw)
        self.join = MirrorJoin(self.mirror)

    def _build(self, raw: BinaryIO) -> int:
        rows = _records(raw, self.where, self.id_field, self.fields)
        writer = ChunkWriter(self.mirror.store, "sorted/", CHUNK_ROWS)
        count = 0
        with tempfile.TemporaryDirectory(dir=self._tmp.name) as runs:
            for record in one_per_id(sort_records(rows, runs), keep="first"):
                writer.add(record)
                count += 1
        writer.flush()
        self.mirror.index.chunks = writer.chunks
        self.mirror.index.rows = count
        return count

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.join.lookup(ids)

    def prepare(
        self, deadline: Deadline, needed: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        return None

    def staleness(self, as_of: dt.datetime) -> str | None:
        if self.as_of is None or self.as_of >= as_of:
            return None
        return (
            f"the CRM export {self.where} was written {_when(self.as_of)}, before "
            f"{_when(as_of)}: visitors it lacks may be in the CRM by now; upload a newer export"
        )


class MirrorSource:
    """``CRM_SOURCE=marketo-mirror``: lookups joined against the bulk-extracted mirror - no
    per-visitor Marketo call. ``prepare`` brings the mirror up to date first (MirrorSync)."""

    name = "marketo-mirror"
    calls = 0  # lookups make none; the sync's export calls are in its report
    lookups_cost_calls = False

    def __init__(
        self,
        mirror: Mirror,
        sync: MirrorSync | None = None,
        sync_every: dt.timedelta = dt.timedelta(hours=24),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.mirror = mirror
        self.sync = sync
        self.sync_every = sync_every
        self.clock = clock
        self.join = MirrorJoin(mirror)

    def prepare(
        self, deadline: Deadline, needed: dt.datetime | None = None
    ) -> dict[str, Any] | None:
        """Sync when a delivery to run needs a newer copy, or once a sync interval: a merge
        rewrites the mirror, so never on every invocation (a continuation, a second run)."""
        if self.sync is None or not self._due(needed):
            return None
        report = self.sync.run(deadline).to_json()
        self.join = MirrorJoin(self.mirror)  # a new generation may have been written
        return report

    def _due(self, needed: dt.datetime | None) -> bool:
        index = self.mirror.index
        if not index.watermark or index.pending:
            return True  # never synced, or an export to resume
        watermark = dt.datetime.fromisoformat(index.watermark.replace("Z", "+00:00"))
        return (needed is not None and watermark < needed) or (
            self.clock() - watermark >= self.sync_every
        )

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.join.lookup(ids)

    def staleness(self, as_of: dt.datetime) -> str | None:
        watermark = self.mirror.index.watermark
        if watermark and dt.datetime.fromisoformat(watermark.replace("Z", "+00:00")) >= as_of:
            return None
        held = f"holds Marketo up to {watermark}" if watermark else "is empty"
        return (
            f"the Marketo mirror {held}; this delivery needs it up to {_when(as_of)} "
            "(the mirror's sync continues each run; see its report under 'crm')"
        )


# Leading bytes of encodings an export is often saved in by mistake; the reader wants UTF-8.
_NOT_UTF8 = {
    b"\x1f\x8b": "gzip-compressed (gunzip it first)",
    b"\xff\xfe": "UTF-16 (save it as UTF-8)",
    b"\xfe\xff": "UTF-16 (save it as UTF-8)",
}


class _Prefixed(io.RawIOBase):
    """A stream's first bytes (already read, to look at them) followed by the rest of it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._head or self._rest.read(len(buffer))
        self._head = self._head[len(chunk) :] if self._head else b""
        chunk = chunk[: len(buffer)]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _utf8_text(raw: BinaryIO, where: str) -> io.TextIOWrapper:
    head = raw.read(2) or b""
    for magic, what in _NOT_UTF8.items():
        if head.startswith(magic):
            raise ConfigError(
                f"{where}: the export is {what}; feedsync reads UTF-8 CSV or JSON Lines"
            )
    stream = io.BufferedReader(_Prefixed(head, raw))
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def _records(raw: BinaryIO, where: str, id_field: str, fields: Sequence[str]) -> Iterator[Record]:
    text = _utf8_text(raw, where)
    try:
        first = text.readline()
        rows = (
            _json_lines(first, text, where)
            if first.lstrip().startswith("{")
            else _csv_rows(first, text, where, id_field)
        )
        for row in rows:
            visitor = str(row.get(id_field) or "").strip()
            if visitor:
                yield visitor, {k: v for k, v in row.items() if k in fields or k == id_field}
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"{where}: not UTF-8 text (byte 0x{byte} cannot be decoded, as in a Latin-1 or "
            "Windows-1252 export); save the export as UTF-8"
        ) from None


def _json_lines(first: str, text: Iterable[str], where: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(itertools.chain([first], text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ConfigError(f"{where}: line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: line {number} is not a JSON object")
        yield row


def _csv_rows(
    first: str, text: Iterable[str], where: str, id_field: str
) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(itertools.chain([first], text))
    if id_field not in (reader.fieldnames or []):
        raise ConfigError(f"{where}: no {id_field!r} column (columns: {reader.fieldnames})")
    yield from reader
