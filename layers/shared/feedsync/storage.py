"""Object stores the pipeline reads and writes: a folder or memory here, S3 in ``aws.s3``.

Keys are '/'-separated. ``open`` streams; nothing here reads a whole feed file into memory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class ObjectStore(Protocol):
    def open(self, key: str, start: int = 0) -> BinaryIO:
        """A readable stream of the object from byte ``start``; FileNotFoundError if absent."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, content_type: str = ...) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object if it exists."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, sorted."""
        ...

    def describe(self, key: str) -> str:
        """Where the key lives, for messages (s3://bucket/key or a path)."""
        ...


def get_json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    raw = store.get(key)
    return None if raw is None else json.loads(raw)


def put_json(store: ObjectStore, key: str, value: dict[str, Any]) -> None:
    store.put(key, json.dumps(value, indent=1, sort_keys=True).encode(), "application/json")


class LocalStore:
    """Objects as files under a folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def open(self, key: str, start: int = 0) -> BinaryIO:
        handle = (self.root / key).open("rb")
        if start:
            handle.seek(start)
        return handle

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(".tmp"):
                yield key

    def describe(self, key: str) -> str:
        return str(self.root / key)


class MemoryStore:
    """Objects in a dict: the CLI's throw-away state and a fake for tests."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def open(self, key: str, start: int = 0) -> BinaryIO:
        if key not in self.objects:
            raise FileNotFoundError(key)
        return io.BytesIO(self.objects[key][start:])

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = bytes(data)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in list(self.objects) if k.startswith(prefix))

    def describe(self, key: str) -> str:
        return f"memory:{key}"
