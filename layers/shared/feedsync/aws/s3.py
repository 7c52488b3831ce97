"""The state and feed buckets as an ObjectStore (S3 in Lambda and for the CLI's S3 paths)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class S3Store:
    """Objects under ``prefix`` in one bucket; the boto3 client is passed in."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + key

    def open(self, key: str, start: int = 0) -> BinaryIO:
        try:
            if start:  # a ranged GET: from a gzip member boundary of a visitor stream
                answer = self._s3.get_object(
                    Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-"
                )
            else:
                answer = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
            body = answer["Body"]
            return body  # type: ignore[return-value]  # StreamingBody reads like a binary file
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

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str) -> Iterator[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def presign(self, key: str, seconds: int = 86_400) -> str:
        """An HTTPS link that reads the object without credentials, for ``seconds`` (at most
        as long as the credentials that sign it live)."""
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=seconds,
            )
        )  # fmt: skip

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
