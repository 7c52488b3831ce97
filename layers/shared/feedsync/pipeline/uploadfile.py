"""Data source upload files from mapped rows: header, one row per visitor, split under limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedsync.adobe.datasource_file import MAX_ROW_BYTES
from feedsync.pipeline.mapping import MappedRow, Mapping, Rejected

MAX_PART_BYTES = 45 * 1024 * 1024  # Adobe's limit is 50 MB; stay well under it


def hit_date(day: dt.date) -> str:
    # Midday of the hit day: the row lands on that day in any report suite time zone offset
    # Adobe applies to the date.
    return f"{day:%m/%d/%Y}/12/00/00"


@dataclass
class UploadFiles:
    parts: list[bytes] = field(default_factory=list)
    rows: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def build_datasource_files(
    rows: Iterable[MappedRow],
    mapping: Mapping,
    day: dt.date,
    comment: str = "",
    max_part_bytes: int = MAX_PART_BYTES,
) -> UploadFiles:
    """The upload file(s) for ``rows``: every part has the comment and header lines."""
    head = "".join(f"# {line}\n" for line in comment.splitlines() if line)
    head += "\t".join(mapping.headers) + "\n"
    head_bytes = head.encode("utf-8")
    date = hit_date(day)
    out = UploadFiles()
    chunks: list[bytes] = []
    size = 0
    for row in rows:
        cells = [date, row.visitor, "1", *(row.values.get(h, "") for h in mapping.columns.values())]
        line = ("\t".join(cells) + "\n").encode("utf-8")
        if len(line) - 1 > MAX_ROW_BYTES:
            out.rejected.append(
                Rejected(
                    row.visitor, f"row is {len(line) - 1} bytes; Adobe's limit is {MAX_ROW_BYTES}"
                )
            )
            continue
        if chunks and size + len(line) > max_part_bytes:
            out.parts.append(head_bytes + b"".join(chunks))
            chunks, size = [], len(head_bytes)
        if not chunks:
            size = len(head_bytes)
        chunks.append(line)
        size += len(line)
        out.rows += 1
    if chunks:
        out.parts.append(head_bytes + b"".join(chunks))
    return out
