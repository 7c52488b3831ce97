"""Which visitors of a hit file are pending (no CRM id on any counted hit) and which are known.

Reports count a hit only when ``exclude_hit`` is 0 and ``hit_source`` is not 5, 7, 8 or 9
(DESIGN §2); a counted hit without a visitor id is skipped (and counted as such).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from feedsync.errors import ColumnError

EXCLUDE_HIT = "exclude_hit"
HIT_SOURCE = "hit_source"
# Data-source, summary and other hits that reports do not count as visits (DESIGN §2).
UNCOUNTED_HIT_SOURCES = frozenset({b"5", b"7", b"8", b"9"})
COUNTED_EXCLUDE_HIT = frozenset({b"", b"0"})
VISITOR_KEY_SEPARATOR = "_"  # joins multi-column keys, e.g. post_visid_high + post_visid_low


@dataclass(frozen=True)
class HitLayout:
    """Where the columns feedsync reads sit in a delivery's rows."""

    n_columns: int
    wanted: tuple[int, ...]  # ascending column indexes the scanner extracts
    visitor: tuple[int, ...]  # positions in a scanned row tuple
    crm_id: int
    exclude_hit: int | None
    hit_source: int | None
    visitor_columns: tuple[str, ...]
    crm_id_column: str
    column_index: dict[str, int]  # header name -> column index, for the columns above

    @property
    def filters(self) -> list[str]:
        return [
            name
            for name, slot in ((EXCLUDE_HIT, self.exclude_hit), (HIT_SOURCE, self.hit_source))
            if slot is not None
        ]

    @classmethod
    def from_headers(
        cls,
        headers: Sequence[str],
        visitor_columns: Sequence[str],
        crm_id_column: str,
        source: str = "column_headers.tsv",
    ) -> HitLayout:
        index = {name: i for i, name in enumerate(headers)}
        missing = [c for c in (*visitor_columns, crm_id_column) if c not in index]
        if missing:
            hints = sorted(h for h in headers if any(m.split("_")[-1] in h for m in missing))[:8]
            raise ColumnError(
                source,
                f"column(s) {', '.join(missing)} not in this feed's {len(headers)} columns"
                + (f"; similar: {', '.join(hints)}" if hints else ""),
            )
        roles = [*visitor_columns, crm_id_column]
        roles += [c for c in (EXCLUDE_HIT, HIT_SOURCE) if c in index]
        wanted = tuple(sorted({index[c] for c in roles}))
        slot = {col: wanted.index(index[col]) for col in roles}
        return cls(
            n_columns=len(headers),
            wanted=wanted,
            visitor=tuple(slot[c] for c in visitor_columns),
            crm_id=slot[crm_id_column],
            exclude_hit=slot.get(EXCLUDE_HIT),
            hit_source=slot.get(HIT_SOURCE),
            visitor_columns=tuple(visitor_columns),
            crm_id_column=crm_id_column,
            column_index={col: index[col] for col in roles},
        )


@dataclass
class VisitorTally:
    """Accumulates row counts and visitor sets for one hit file."""

    layout: HitLayout
    rows: int = 0
    excluded_rows: int = 0
    rows_without_visitor: int = 0
    known: set[bytes] = field(default_factory=set)
    seen: set[bytes] = field(default_factory=set)  # counted visitors, known or not

    @property
    def counted_rows(self) -> int:
        return self.rows - self.excluded_rows

    def add_keys(
        self, rows: int, excluded: int, without: int, pending: bytes, known: bytes
    ) -> None:
        """Counts and newline-terminated visitor keys from the native scanner."""
        self.rows += rows
        self.excluded_rows += excluded
        self.rows_without_visitor += without
        if pending:
            self.seen.update(pending[:-1].split(b"\n"))
        if known:
            self.known.update(known[:-1].split(b"\n"))

    def add(self, rows: Iterable[tuple[bytes, ...]]) -> None:
        layout = self.layout
        ex, hs, crm = layout.exclude_hit, layout.hit_source, layout.crm_id
        single = layout.visitor[0] if len(layout.visitor) == 1 else None
        parts = layout.visitor
        sep = VISITOR_KEY_SEPARATOR.encode()
        counted_exclude, uncounted_sources = COUNTED_EXCLUDE_HIT, UNCOUNTED_HIT_SOURCES
        seen_add, known_add = self.seen.add, self.known.add
        n = excluded = without = 0
        for row in rows:
            n += 1
            if (ex is not None and row[ex] not in counted_exclude) or (
                hs is not None and row[hs] in uncounted_sources
            ):
                excluded += 1
                continue
            if single is not None:
                visitor = row[single]
            else:
                values = [row[p] for p in parts]
                visitor = b"" if not all(values) else sep.join(values)
            if not visitor:
                without += 1
            elif row[crm]:
                known_add(visitor)
            else:
                seen_add(visitor)
        self.rows += n
        self.excluded_rows += excluded
        self.rows_without_visitor += without

    def pending_keys(self) -> set[bytes]:
        """Counted visitors with no CRM id on any of their hits, as the feed's bytes."""
        return self.seen - self.known
