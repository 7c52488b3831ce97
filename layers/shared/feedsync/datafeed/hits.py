"""Fast, exact extraction of a few columns from Adobe hit data.

Format (DESIGN §2): ISO-8859-1, a tab ends a field, a newline ends a row, and a backslash
escapes the next byte (``\\<TAB>``, ``\\<LF>`` and ``\\\\`` are data). Naive line splitting breaks
rows; the csv module is correct but materialises all ~300 fields of every row as str.

This scanner only pulls the handful of columns feedsync needs. Regions of a chunk that hold no
backslash at all (nearly every byte of a real feed) go through one compiled regular expression
per region that skips fields with possessive quantifiers, so no per-field Python object is made.
Rows that contain a backslash take an escape-aware path. Every region's row and tab counts are
checked, so a row with a wrong number of fields is an error naming the row, never a silent shift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from feedsync.errors import CorruptFileError

Row = tuple[bytes, ...]

# One field, escape-aware: runs of plain bytes, each backslash taking the next byte as data.
_ESCAPED_FIELD = re.compile(rb"[^\t\n\\]*+(?:\\.[^\t\n\\]*+)*+", re.S)
_UNESCAPE = re.compile(rb"\\(.)", re.S)


def unescape(field: bytes) -> bytes:
    return _UNESCAPE.sub(rb"\1", field) if b"\\" in field else field


def _fast_pattern(wanted: Sequence[int], n_columns: int) -> re.Pattern[bytes]:
    """A pattern matching one backslash-free row of exactly ``n_columns`` fields and capturing
    the wanted ones in order. No part can cross a newline, so a row with one field too many or
    too few never matches (even when another row's error compensates it in the totals).
    """
    parts = [rb"^"]
    previous = 0
    for n, index in enumerate(wanted):
        if n:
            parts.append(rb"\t")  # the tab that ends the previous captured field
        parts.append(rb"[^\t\n]*+\t" * (index - previous))
        parts.append(rb"([^\t\n]*+)")
        previous = index + 1
    rest = n_columns - previous
    if rest:
        parts.append(rb"(?:\t[^\t\n]*+){%d}" % rest)
    parts.append(rb"\n")
    return re.compile(b"".join(parts), re.M)


class RowScanner:
    """Turns decompressed chunks into tuples of the wanted (unescaped) fields, one per row."""

    def __init__(self, n_columns: int, wanted: Sequence[int], source: str) -> None:
        if not wanted or max(wanted) >= n_columns or list(wanted) != sorted(set(wanted)):
            raise ValueError("wanted columns must be distinct, ascending and within the row")
        self.n_columns = n_columns
        self.wanted = tuple(wanted)
        self.source = source
        self.records = 0
        self._pattern = _fast_pattern(self.wanted, n_columns)
        self._tabs_per_row = n_columns - 1
        self._carry = b""

    # -- public API --------------------------------------------------------------------------
    def rows(self, chunks: Iterable[bytes]) -> Iterator[list[Row]]:
        """Yield batches of rows; raise CorruptFileError on malformed data."""
        for chunk in chunks:
            batch = self.feed(chunk)
            if batch:
                yield batch
        batch = self.finish()
        if batch:
            yield batch

    def feed(self, chunk: bytes) -> list[Row]:
        buf = self._carry + chunk if self._carry else chunk
        out: list[Row] = []
        pos = self._scan(buf, out)
        self._carry = buf[pos:]
        return out

    def finish(self) -> list[Row]:
        """Flush a last row that lacks its trailing newline."""
        tail, self._carry = self._carry, b""
        if not tail:
            return []
        out: list[Row] = []
        if b"\\" not in tail:
            self._clean_region(tail + b"\n", 0, len(tail) + 1, out)
            return out
        result = self.parse_row(tail, 0, final=True)
        assert result is not None  # final=True never asks for more data
        out.append(result[0])
        self.records += 1
        return out

    # -- internals ---------------------------------------------------------------------------
    def _scan(self, buf: bytes, out: list[Row]) -> int:
        pos, end = 0, len(buf)
        while pos < end:
            backslash = buf.find(b"\\", pos)
            if backslash < 0:
                last_newline = buf.rfind(b"\n", pos)
                if last_newline >= 0:
                    self._clean_region(buf, pos, last_newline + 1, out)
                    pos = last_newline + 1
                return pos
            row_start = max(buf.rfind(b"\n", pos, backslash) + 1, pos)
            if row_start > pos:
                self._clean_region(buf, pos, row_start, out)
            result = self.parse_row(buf, row_start, final=False)
            if result is None:  # the row continues in the next chunk
                return row_start
            out.append(result[0])
            self.records += 1
            pos = result[1]
        return pos

    def _clean_region(self, buf: bytes, start: int, end: int, out: list[Row]) -> None:
        """Complete, backslash-free rows in buf[start:end] (end just after a newline)."""
        found = self._pattern.findall(buf, start, end)
        n_rows = buf.count(b"\n", start, end)
        if len(found) == n_rows and buf.count(b"\t", start, end) == n_rows * self._tabs_per_row:
            if len(self.wanted) == 1:
                out.extend((value,) for value in found)
            else:
                out.extend(found)
            self.records += n_rows
            return
        # Some row has the wrong number of fields: walk the rows to name the first bad one.
        pos = start
        while pos < end:
            result = self.parse_row(buf, pos, final=False)
            assert result is not None  # the region ends with a newline
            out.append(result[0])
            self.records += 1
            pos = result[1]

    def parse_row(self, buf: bytes, start: int, final: bool) -> tuple[Row, int] | None:
        """Parse one escape-aware row from ``start``: (wanted fields, end); None if incomplete.

        Errors name the row as ``records + 1``; callers that count rows themselves set records.
        """
        fields: list[bytes] = []
        pos, end = start, len(buf)
        match = _ESCAPED_FIELD.match
        while True:
            field_end = match(buf, pos).end()  # type: ignore[union-attr]  # matches empty
            fields.append(buf[pos:field_end])
            if field_end >= end:
                if not final:
                    return None
                next_pos = field_end
                break
            byte = buf[field_end]
            if byte == 9:  # tab: next field
                pos = field_end + 1
                continue
            if byte == 10:  # newline: end of row
                next_pos = field_end + 1
                break
            # a backslash with nothing after it
            if not final:
                return None
            raise CorruptFileError(
                self.source, f"row {self.records + 1}: the file ends inside a backslash escape"
            )
        if len(fields) != self.n_columns:
            raise CorruptFileError(
                self.source,
                f"row {self.records + 1} has {len(fields)} fields, "
                f"column_headers.tsv names {self.n_columns}",
            )
        return tuple(unescape(fields[i]) for i in self.wanted), next_pos
