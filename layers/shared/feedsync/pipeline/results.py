"""Where parse results live in the state store, and how they are merged.

Layout (keys relative to the state store)::

    results/<folder>/<delivery>/<file>.json               per-file summary (written last)
    results/<folder>/<delivery>/<file>.<md5>.visitors.gz  sorted "id<TAB>P|K" lines
    deliveries/<folder>/<delivery>.json                    delivery record

The visitor stream is named by the file's digest, so a re-delivered file never mixes with its
old result, and the summary points at exactly the stream it describes.
"""

from __future__ import annotations

import gzip
import heapq
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from feedsync.storage import ObjectStore, get_json, put_json

PENDING, KNOWN = "P", "K"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})


def _escape(visitor: str) -> str:
    return visitor.translate(_ESCAPES)


def _unescape(text: str) -> str:
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


@dataclass(frozen=True)
class DeliveryKeys:
    folder: str  # the feed folder inside the feed bucket, "" or ending in "/"
    delivery_id: str

    @property
    def base(self) -> str:
        return f"results/{self.folder}{self.delivery_id}/"

    def summary(self, file_name: str) -> str:
        return f"{self.base}{file_name}.json"

    def visitors(self, file_name: str, md5: str) -> str:
        return f"{self.base}{file_name}.{md5}.visitors.gz"

    @property
    def record(self) -> str:
        return f"deliveries/{self.folder}{self.delivery_id}.json"


def write_visitors(
    store: ObjectStore, key: str, pending: Iterable[str], known: Iterable[str]
) -> None:
    """Write one sorted stream; a visitor is either pending or known in one file, never both."""
    merged = heapq.merge(((v, PENDING) for v in pending), ((v, KNOWN) for v in known))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as out:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
        for visitor, state in merged:
            text.write(f"{_escape(visitor)}\t{state}\n")
        text.flush()
        text.detach()
    store.put(key, buffer.getvalue(), "application/gzip")


def read_visitors(store: ObjectStore, key: str) -> Iterator[tuple[str, str]]:
    """Stream (visitor, P|K) pairs in sorted order without loading the file."""
    with gzip.open(store.open(key), "rt", encoding="utf-8", newline="\n") as lines:
        for line in lines:
            visitor, _, state = line.rstrip("\n").rpartition("\t")
            yield _unescape(visitor), state


def merge_visitors(streams: Iterable[Iterator[tuple[str, str]]]) -> Iterator[tuple[str, bool]]:
    """(visitor, known) across files: known if known in any file, pending otherwise.

    Memory holds one line per stream: a k-way merge of the sorted per-file streams.
    """
    for visitor, group in groupby(heapq.merge(*streams), key=lambda pair: pair[0]):
        yield visitor, any(state == KNOWN for _, state in group)


def load_summary(store: ObjectStore, keys: DeliveryKeys, file_name: str) -> dict[str, Any] | None:
    return get_json(store, keys.summary(file_name))


def save_summary(store: ObjectStore, keys: DeliveryKeys, summary: dict[str, Any]) -> None:
    put_json(store, keys.summary(summary["file"]), summary)
