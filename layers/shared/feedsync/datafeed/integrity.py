"""MD5 and size of a file's compressed bytes, computed while they are read."""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType
from typing import Protocol


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class HashingReader:
    """A read-only stream wrapper that hashes and counts every byte read through it.

    With ``background=True`` the digest is computed in a thread of its own: hashlib releases the
    GIL on large blocks, so hashing runs beside inflation and scanning instead of adding to the
    inflating thread (the slowest stage of a parse). Use it as a context manager then, so the
    thread always ends; ``md5`` waits for the blocks read so far.
    """

    def __init__(self, raw: Readable, background: bool = False) -> None:
        self._raw = raw
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self._blocks: queue.Queue[bytes | None] | None = None
        self._worker: threading.Thread | None = None
        if background:
            self._blocks = queue.Queue(maxsize=16)  # bounds the bytes waiting to be hashed
            self._worker = threading.Thread(target=self._hash_blocks, name="feedsync-md5")
            self._worker.daemon = True
            self._worker.start()

    def _hash_blocks(self) -> None:
        assert self._blocks is not None
        while (block := self._blocks.get()) is not None:
            self._md5.update(block)

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            if self._blocks is None:
                self._md5.update(data)
            else:
                self._blocks.put(data)
            self.size += len(data)
        return data

    def drain(self, block: int = 1 << 20) -> None:
        """Read to the end so the digest covers the whole file."""
        while self.read(block):
            pass

    def close(self) -> None:
        """End the hashing thread (after it took every block read); later reads hash inline."""
        if self._worker is not None and self._blocks is not None:
            self._blocks.put(None)
            self._worker.join()
        self._worker, self._blocks = None, None

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def md5(self) -> str:
        self.close()
        return self._md5.hexdigest()
