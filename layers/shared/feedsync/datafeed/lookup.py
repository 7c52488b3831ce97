"""The lookup archive: ``column_headers.tsv`` holds the one header row of the hit files."""

from __future__ import annotations

import tarfile
from typing import IO, cast

from feedsync.datafeed.integrity import Readable
from feedsync.errors import CorruptFileError

COLUMN_HEADERS = "column_headers.tsv"


def parse_column_headers(raw: bytes, source: str) -> list[str]:
    text = raw.decode("iso-8859-1").rstrip("\r\n")
    if not text or "\n" in text:
        raise CorruptFileError(source, f"{COLUMN_HEADERS} must hold exactly one header row")
    headers = [h.strip() for h in text.split("\t")]
    dupes = sorted({h for h in headers if headers.count(h) > 1})
    if "" in headers or dupes:
        raise CorruptFileError(source, f"{COLUMN_HEADERS} has empty or repeated names {dupes}")
    return headers


def read_column_headers(stream: Readable, source: str) -> list[str]:
    """Stream the archive until ``column_headers.tsv``; nothing else is extracted.

    The stream is left positioned after that member, so a caller hashing it can drain the rest.
    """
    try:
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.rsplit("/", 1)[-1] == COLUMN_HEADERS:
                    handle = archive.extractfile(member)
                    assert handle is not None  # isfile() members always have data
                    return parse_column_headers(handle.read(), source)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorruptFileError(source, f"not a readable tar.gz archive ({exc})") from None
    raise CorruptFileError(source, f"the archive has no {COLUMN_HEADERS}")
