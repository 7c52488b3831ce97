"""Data source upload files from mapped rows: header, one row per visitor, split under limits.

Every row is checked against the data source rules (``adobe.datasource_file``) before it goes
into a file: a row Adobe would refuse (a ``;`` in the visitor id, over 4,096 bytes...) is
refused here with its reason, and the file stays valid for everyone else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedsync.adobe.datasource_file import MAX_ROW_BYTES, Header, RowRules, parse_header
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.state.records import Rejected

MAX_PART_BYTES = 45 * 1024 * 1024  # Adobe's limit is 50 MB; stay well under it


def hit_date(day: dt.date) -> str:
    # Midday of the hit day: the row lands on that day in any report suite time zone offset
    # Adobe applies to the date.
    return f"{day:%m/%d/%Y}/12/00/00"


@dataclass
class FilePart:
    data: bytes
    visitors: list[str]


@dataclass
class UploadFiles:
    parts: list[bytes] = field(default_factory=list)
    part_visitors: list[list[str]] = field(default_factory=list)  # whose rows each part holds
    rows: int = 0
    rejected: list[Rejected] = field(default_factory=list)


class _PartWriter:
    def __init__(self, head: bytes, max_bytes: int) -> None:
        self.head = head
        self.max_bytes = max_bytes
        self.done: list[FilePart] = []
        self.lines: list[bytes] = []
        self.visitors: list[str] = []
        self.size = len(head)

    def add(self, visitor: str, line: bytes) -> None:
        if self.lines and self.size + len(line) > self.max_bytes:
            self.flush()
        self.lines.append(line)
        self.visitors.append(visitor)
        self.size += len(line)

    def flush(self) -> None:
        if self.lines:
            self.done.append(FilePart(self.head + b"".join(self.lines), self.visitors))
        self.lines, self.visitors, self.size = [], [], len(self.head)


def _refusal(cells: list[str], line: bytes, rules: RowRules) -> str | None:
    if len(line) - 1 > MAX_ROW_BYTES:
        return f"row is {len(line) - 1} bytes; Adobe's limit is {MAX_ROW_BYTES}"
    # the line is the cells joined: any extra tab, or a line break before its end, came from a value
    if line.count(b"\t") != len(cells) - 1 or b"\r" in line or line.find(b"\n") != len(line) - 1:
        return "a value holds a tab or a line break (the file is tab-delimited, one row a line)"
    problems = rules.problems(cells)
    return "; ".join(problems) if problems else None


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
    writer = _PartWriter(head.encode("utf-8"), max_part_bytes)
    date = hit_date(day)
    rules = RowRules([h for h in map(parse_header, mapping.headers) if isinstance(h, Header)])
    out = UploadFiles()
    for row in rows:
        cells = [date, row.visitor, "1", *(row.values.get(h, "") for h in mapping.columns.values())]
        line = ("\t".join(cells) + "\n").encode("utf-8")
        reason = _refusal(cells, line, rules)
        if reason:
            out.rejected.append(Rejected(row.visitor, reason))
            continue
        writer.add(row.visitor, line)
        out.rows += 1
    writer.flush()
    out.parts = [part.data for part in writer.done]
    out.part_visitors = [part.visitors for part in writer.done]
    return out
