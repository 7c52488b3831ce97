"""MD5 and size of a file's compressed bytes, computed while they are read."""

from __future__ import annotations

import hashlib
from typing import Protocol


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class HashingReader:
    """A read-only stream wrapper that hashes and counts every byte read through it."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._md5.update(data)
            self.size += len(data)
        return data

    def drain(self, block: int = 1 << 20) -> None:
        """Read to the end so the digest covers the whole file."""
        while self.read(block):
            pass

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()
