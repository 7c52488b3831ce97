"""Streaming gzip decompression of data feed files.

Uses python-isal when it is installed (about 5x faster than zlib on feed data) and falls back to
the standard library. Handles multi-member gzip files and reports truncation instead of
returning a silently short file.
"""

from __future__ import annotations

import types
import zlib
from collections.abc import Iterator
from typing import Any

from feedsync.datafeed.integrity import Readable
from feedsync.errors import CorruptFileError

_zlib: types.ModuleType
try:  # isal decompresses the same bytes as zlib, much faster; optional so dev setups still work
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - exercised only where isal is absent
    _zlib = zlib

DECOMPRESSOR = _zlib.__name__.rsplit(".", 1)[-1]
_GZIP_WBITS = 31
_ERRORS: tuple[type[BaseException], ...] = (zlib.error, getattr(_zlib, "error", zlib.error))


def decompressed_chunks(
    stream: Readable, source: str, read_size: int = 1 << 18, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield the decompressed bytes of a gzip stream in chunks of at most ``chunk_size``.

    Small chunks keep the scanner's working set in the CPU cache; the stream is never held whole.
    """
    decomp: Any = _zlib.decompressobj(_GZIP_WBITS)
    member_started = False
    total_in = 0
    try:
        while True:
            data = stream.read(read_size)
            if not data:
                break
            total_in += len(data)
            while data:
                member_started = True
                out = decomp.decompress(data, chunk_size)
                if out:
                    yield out
                if decomp.eof:
                    data = decomp.unused_data
                    decomp = _zlib.decompressobj(_GZIP_WBITS)
                    member_started = False
                else:
                    data = decomp.unconsumed_tail
            # drain output held back by chunk_size before reading more input
            while not decomp.eof and member_started:
                out = decomp.decompress(b"", chunk_size)
                if not out:
                    break
                yield out
    except _ERRORS as exc:
        raise CorruptFileError(source, f"not valid gzip data ({exc})") from None
    if total_in == 0:
        raise CorruptFileError(source, "the file is empty (0 bytes), not gzip")
    if member_started and not decomp.eof:
        raise CorruptFileError(source, "truncated gzip: the stream ends before the gzip trailer")
