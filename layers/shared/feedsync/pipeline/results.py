"""Per-file parse results: the summary record and the sorted visitor stream, and their merge.

The visitor stream is named by the file's digest (see ``layout``), so a re-delivered file never
mixes with its old result, and the summary points at exactly the stream it describes. Ids are
escaped in the stream (backslash, ``\\t``, ``\\n``) so one line is always one id.
"""

from __future__ import annotations

import gzip
import heapq
import types
import zlib
from collections.abc import Iterable, Iterator
from itertools import groupby

from feedsync.pipeline.layout import StateLayout
from feedsync.pipeline.records import FileResult
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


def write_visitors(
    store: ObjectStore, key: str, pending: Iterable[str], known: Iterable[str]
) -> None:
    """Write one sorted stream; a visitor is either pending or known in one file, never both."""
    # a fast gzip level: the stream is read back once or twice and kept for days
    deflate = _zlib.compressobj(1, _zlib.DEFLATED, 31)
    parts = [deflate.compress(block) for block in _stream_blocks(list(pending), list(known))]
    parts.append(deflate.flush())
    store.put(key, b"".join(parts), "application/gzip")


def _stream_blocks(pending: list[str], known: list[str], size: int = 65_536) -> Iterator[bytes]:
    """The stream's lines, in blocks. Both lists are sorted, so sorting their concatenation is
    timsort's linear merge of two runs; ids needing an escape are rare, so a block's ids go
    through the escape table only when one of them holds a backslash, tab or newline."""
    ids = sorted(pending + known)
    known_set = frozenset(known)
    for start in range(0, len(ids), size):
        block = ids[start : start + size]
        joined = "".join(block)
        if "\\" in joined or "\t" in joined or "\n" in joined:
            block = [escape_id(v) for v in block]
            states = [KNOWN if v in known_set else PENDING for v in ids[start : start + size]]
        else:
            states = [KNOWN if v in known_set else PENDING for v in block]
        lines = [f"{v}\t{state}\n" for v, state in zip(block, states, strict=True)]
        # ISO-8859-1: one byte per character, so the stream holds the feed's bytes exactly
        yield "".join(lines).encode("iso-8859-1")


def read_visitors(store: ObjectStore, key: str) -> Iterator[tuple[str, str]]:
    """Stream (visitor, P|K) pairs in sorted order without loading the file."""
    with gzip.open(store.open(key), "rt", encoding="iso-8859-1", newline="\n") as lines:
        for line in lines:
            visitor, _, state = line.rstrip("\n").rpartition("\t")
            yield unescape_id(visitor), state


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
