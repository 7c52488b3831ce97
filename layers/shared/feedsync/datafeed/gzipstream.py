"""Streaming gzip decompression of data feed files.

Uses python-isal's gzip reader when it is installed: it inflates about twice as fast as the
zlib-style ``decompressobj`` interface (of isal or the standard library) and releases the GIL
while it works, so the scanner's Python steps run beside it. Falls back to the standard
library's reader, which has the same interface. Both read multi-member files whole and report a
truncated file instead of returning a silently short one.
"""

from __future__ import annotations

import gzip
import types
import zlib
from collections.abc import Iterator

from feedsync.datafeed.integrity import Readable
from feedsync.errors import CorruptFileError

_gzip: types.ModuleType
# corrupt data only: a failing read of the underlying stream is not the file's fault
_ERRORS: tuple[type[BaseException], ...] = (gzip.BadGzipFile, zlib.error)
try:  # optional so dev setups without the wheel still work
    from isal import igzip as _gzip
    from isal import isal_zlib

    _ERRORS = (*_ERRORS, getattr(isal_zlib, "error", zlib.error))  # typed as an instance
except ImportError:  # pragma: no cover - exercised only where isal is absent
    _gzip = gzip

DECOMPRESSOR = _gzip.__name__  # "isal.igzip" or "gzip"


class _Replayed:
    """The stream with its first block (already read, to tell an empty file apart) put back."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head, self._rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(n)
        if n < 0 or n >= len(self._head):
            data, self._head = self._head, b""
            return data
        data, self._head = self._head[:n], self._head[n:]
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)


def decompressed_chunks(
    stream: Readable, source: str, read_size: int = 1 << 18, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield the decompressed bytes of a gzip stream in chunks of at most ``chunk_size``.

    Small chunks keep the scanner's working set in the CPU cache; the stream is never held whole.
    """
    head = stream.read(read_size)
    if not head:
        raise CorruptFileError(source, "the file is empty (0 bytes), not gzip")
    try:
        with _gzip.open(_Replayed(head, stream), "rb") as inflated:
            while chunk := inflated.read(chunk_size):
                yield chunk
    except EOFError:
        raise CorruptFileError(
            source, "truncated gzip: the stream ends before the gzip trailer"
        ) from None
    except _ERRORS as exc:
        raise CorruptFileError(source, f"not valid gzip data ({exc})") from None
