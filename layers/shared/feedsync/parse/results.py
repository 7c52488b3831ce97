"""Parse results: per file, the summary record and the sorted visitor stream; per delivery, the
record and its pending visitors (the merge of its files' streams), as the daily run reads them.

The visitor stream is named by the file's digest (see ``layout``), so a re-delivered file never
mixes with its old result, and the summary points at exactly the stream it describes. Ids are
escaped in the stream (backslash, ``\\t``, ``\\n``) so one line is always one id.
"""

from __future__ import annotations

import bisect
import errno
import gzip
import heapq
import tempfile
import types
import zlib
from collections.abc import Callable, Iterable, Iterator, Set
from functools import partial
from itertools import groupby
from pathlib import Path

from feedsync.datafeed.encoding import visitor_text
from feedsync.state.layout import StateLayout
from feedsync.state.records import DeliveryRecord, FileResult
from feedsync.storage import ObjectStore, get_json, put_json

_zlib: types.ModuleType
try:  # isal compresses the same gzip format several times faster
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - exercised only where isal is absent
    _zlib = zlib

PENDING, KNOWN = "P", "K"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})


def escape_id(visitor: str) -> str:
    return visitor.translate(_ESCAPES)


def unescape_id(text: str) -> str:
    if "\\" not in text:
        return text
    out, chars = [], iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append({"t": "\t", "n": "\n"}.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


# A stream is written as gzip members of MEMBER_IDS ids each, with an index of (first id, byte
# offset) per member: a run resumes by reading from the member its cursor falls in (an S3
# ranged GET), never from the start of the file. A reader that ignores the index reads the
# members one after the other, as any gzip reader does.
MEMBER_IDS = 65_536
Index = list[tuple[str, int]]


def write_visitors(
    store: ObjectStore, key: str, pending: Iterable[str], known: Iterable[str]
) -> Index:
    """Write one sorted stream; a visitor is either pending or known in one file, never both."""
    return write_visitor_keys(
        store,
        key,
        {v.encode("iso-8859-1") for v in pending},
        {v.encode("iso-8859-1") for v in known},
    )


def write_visitor_keys(
    store: ObjectStore, key: str, pending: Set[bytes], known: Set[bytes]
) -> Index:
    """The same, from the scanner's visitor keys: the feed's bytes, one byte per character in
    ISO-8859-1, so bytes order is the order readers see and nothing is decoded twice. Returns
    the member index (first id, offset)."""
    parts: list[bytes] = []
    index: Index = []
    offset = 0
    for first, block in _stream_blocks(pending, known):
        # a fast gzip level: the stream is read back once or twice and kept for days
        deflate = _zlib.compressobj(1, _zlib.DEFLATED, 31)
        member = deflate.compress(block) + deflate.flush()
        index.append((first.decode("iso-8859-1"), offset))
        parts.append(member)
        offset += len(member)
    if not parts:  # an empty stream is one empty gzip member
        deflate = _zlib.compressobj(1, _zlib.DEFLATED, 31)
        parts.append(deflate.flush())
    store.put(key, b"".join(parts), "application/gzip")
    return index


_LINE_END = {True: b"\t" + KNOWN.encode() + b"\n", False: b"\t" + PENDING.encode() + b"\n"}


def _stream_blocks(
    pending: Set[bytes], known: Set[bytes], size: int = MEMBER_IDS
) -> Iterator[tuple[bytes, bytes]]:
    """(first id, lines) of each block. Ids needing an escape are rare, so a block's ids go
    through the escapes only when one of them holds a backslash, tab or newline."""
    ids = sorted(pending | known)
    for start in range(0, len(ids), size):
        block = ids[start : start + size]
        joined = b"".join(block)
        if b"\\" in joined or b"\t" in joined or b"\n" in joined:
            lines = [_escape_key(v) + _LINE_END[v in known] for v in block]
        else:
            lines = [v + _LINE_END[v in known] for v in block]
        yield block[0], b"".join(lines)


def _escape_key(visitor: bytes) -> bytes:
    return escape_id(visitor.decode("iso-8859-1")).encode("iso-8859-1")


def read_visitors(
    store: ObjectStore, key: str, after: str | None = None, index: Index | None = None
) -> Iterator[tuple[str, str]]:
    """Stream (visitor, P|K) pairs in sorted order without loading the file; with ``after``,
    only the ids after it, read from the member it falls in (``index``) when there is one."""
    start = _member_for(index, after) if index and after is not None else 0
    raw = store.open(key, start) if start else store.open(key)
    with gzip.open(raw, "rt", encoding="iso-8859-1", newline="\n") as lines:
        for line in lines:
            visitor, _, state = line.rstrip("\n").rpartition("\t")
            visitor = unescape_id(visitor)
            if after is not None and visitor <= after:
                continue
            yield visitor, state


def _member_for(index: Index, after: str) -> int:
    """The offset of the last member whose first id is at or before ``after``."""
    firsts = [first for first, _ in index]
    at = bisect.bisect_right(firsts, after) - 1
    return index[at][1] if at > 0 else 0


def merge_visitors(streams: Iterable[Iterator[tuple[str, str]]]) -> Iterator[tuple[str, bool]]:
    """(visitor, known) across files: known if known in any file, pending otherwise.

    Memory holds one line per stream: a k-way merge of the sorted per-file streams.
    """
    for visitor, group in groupby(heapq.merge(*streams), key=lambda pair: pair[0]):
        yield visitor, any(state == KNOWN for _, state in group)


def load_summary(store: ObjectStore, key: str, file_name: str) -> FileResult | None:
    data = get_json(store, StateLayout.summary(key, file_name))
    return None if data is None else FileResult.from_json(data)


def save_summary(store: ObjectStore, key: str, summary: FileResult) -> None:
    put_json(store, StateLayout.summary(key, summary.file), summary.to_json())


# Streams open at once in a merge: each is a file descriptor (an S3 connection, a local file),
# and Lambda allows 1,024. More data files than this merge in groups through /tmp.
MAX_OPEN_STREAMS = 64


def delivery_visitors(
    state: ObjectStore,
    record: DeliveryRecord,
    width: int = MAX_OPEN_STREAMS,
    after: str | None = None,
) -> Iterator[tuple[str, bool]]:
    """(visitor, known) over every data file of a delivery, in order: a k-way merge of the
    files' sorted streams, at most ``width`` of them open at once; with ``after``, from the
    first id after it (each file read from its member holding it)."""
    files = [(f.visitors_key, f.visitors_index) for f in record.data_files]
    openers: list[Opener] = [
        partial(read_visitors, state, k, after, list(i) or None) for k, i in files
    ]
    if len(openers) <= width:
        return merge_visitors(opener() for opener in openers)
    return _merge_in_groups(openers, width)


Opener = Callable[[], Iterator[tuple[str, str]]]


def _merge_in_groups(level: list[Opener], width: int) -> Iterator[tuple[str, bool]]:
    """Merge groups of ``width`` streams into sorted intermediate streams in /tmp (gzip, the
    same line format), level by level, until ``width`` or fewer remain; then merge those."""
    with tempfile.TemporaryDirectory(prefix="feedsync-merge-") as tmp:
        count = 0
        while len(level) > width:
            merged: list[Opener] = []
            for start in range(0, len(level), width):
                count += 1
                path = Path(tmp) / f"{count:06d}.gz"
                _write_merged(path, level[start : start + width])
                merged.append(partial(_read_local, path))
            level = merged
        yield from merge_visitors(opener() for opener in level)


def _write_merged(path: Path, group: list[Opener]) -> None:
    try:
        with gzip.open(path, "wt", compresslevel=1, encoding="iso-8859-1", newline="\n") as out:
            for visitor, known in merge_visitors(opener() for opener in group):
                out.write(f"{escape_id(visitor)}\t{KNOWN if known else PENDING}\n")
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(
                exc.errno,
                f"merging the visitor streams of a delivery with many data files filled "
                f"{path.parent.parent}: raise the function's EphemeralStorage",
            ) from None
        raise


def _read_local(path: Path) -> Iterator[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="iso-8859-1", newline="\n") as lines:
        for line in lines:
            visitor, _, state = line.rstrip("\n").rpartition("\t")
            yield unescape_id(visitor), state


def load_record(state: ObjectStore, key: str) -> DeliveryRecord | None:
    data = get_json(state, StateLayout.record(key))
    return None if data is None else DeliveryRecord.from_json(data)


def pending_visitors(
    state: ObjectStore,
    record: DeliveryRecord,
    encoding: str | None = "auto",
    after: str | None = None,
) -> Iterator[str]:
    """The pending visitor ids of a complete delivery, streamed in byte order: as text read
    with ``encoding`` (``datafeed.encoding``), or as the feed's bytes (one character per byte)
    with ``encoding=None``; with ``after`` (bytes order), only the ids after it."""
    if not record.complete:
        raise ValueError(f"delivery {record.delivery} is not complete")
    merged = delivery_visitors(state, record, after=after)
    pending = (visitor for visitor, known in merged if not known)
    if encoding is None:
        return pending
    return (visitor_text(v, encoding) for v in pending)
