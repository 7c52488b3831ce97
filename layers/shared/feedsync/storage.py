"""Object stores the pipeline reads and writes: S3 in Lambda, a folder or memory locally.

Keys are '/'-separated. ``open`` streams; nothing here reads a whole feed file into memory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class ObjectStore(Protocol):
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object; FileNotFoundError if absent."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, content_type: str = ...) -> None: ...

    def exists(self, key: str) -> bool: ...

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


class S3Store:
    """Objects under ``prefix`` in one bucket; the boto3 client is passed in."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + key

    def open(self, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return body
        except self._s3.exceptions.NoSuchKey:
            raise FileNotFoundError(self.describe(key)) from None

    def get(self, key: str) -> bytes | None:
        try:
            return self.open(key).read()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str) -> Iterator[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


class LocalStore:
    """Objects as files under a folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def open(self, key: str) -> BinaryIO:
        return (self.root / key).open("rb")

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

    def open(self, key: str) -> BinaryIO:
        if key not in self.objects:
            raise FileNotFoundError(key)
        return io.BytesIO(self.objects[key])

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = bytes(data)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in list(self.objects) if k.startswith(prefix))

    def describe(self, key: str) -> str:
        return f"memory:{key}"
