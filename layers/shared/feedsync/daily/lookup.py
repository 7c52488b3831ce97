"""One batch's lookup: drop visitors the ledger settled, ask the CRM for the rest, map them.

Visitors awaiting a re-send (Adobe failed their file) are looked up again too, and go only to
the destinations that failed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from feedsync.crm.sources import CrmSource
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.state.ports import Ledger
from feedsync.state.records import LedgerEntry, Rejected

NOT_A_FILTER_VALUE = "visitor id holds ',' (cannot be a CRM filter value)"


@dataclass
class LookupResult:
    ids: int  # the batch's pending visitors
    entries: dict[str, LedgerEntry]  # what the ledger knew of them
    looked_up: list[str] = field(default_factory=list)
    found: int = 0
    rows: list[MappedRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    @property
    def already_enriched(self) -> int:
        return sum(1 for e in self.entries.values() if e.settled)

    def rows_for(self, destination: str) -> list[MappedRow]:
        """New visitors go everywhere; a re-send only where Adobe failed it."""
        out = []
        for row in self.rows:
            entry = self.entries.get(row.visitor)
            if entry is None or destination in entry.retry:
                out.append(row)
        return out


def map_records(
    ids: Sequence[str], found: dict[str, dict[str, Any]], mapping: Mapping
) -> tuple[list[MappedRow], list[Rejected]]:
    """Rows for the ids the CRM knows, in id order, and the records the mapping refused."""
    rows: list[MappedRow] = []
    rejected: list[Rejected] = []
    for visitor in ids:
        record = found.get(visitor)
        if record is None:
            continue
        mapped = mapping.map(visitor, record)
        if isinstance(mapped, MappedRow):
            rows.append(mapped)
        else:
            rejected.append(mapped)
    return rows, rejected


def look_up(
    ledger: Ledger,
    crm: CrmSource,
    mapping: Mapping,
    rsid: str,
    ids: Sequence[str],
    only_retries: bool = False,
) -> LookupResult:
    entries = ledger.entries(rsid, ids)
    result = LookupResult(len(ids), entries)
    if only_retries:
        todo = [v for v in ids if v in entries and not entries[v].settled]
    else:
        todo = [v for v in ids if v not in entries or not entries[v].settled]
    result.looked_up = [v for v in todo if "," not in v]
    result.rejected = [Rejected(v, NOT_A_FILTER_VALUE) for v in todo if "," in v]
    found = crm.lookup(result.looked_up) if result.looked_up else {}
    result.found = len(found)
    rows, bad = map_records(result.looked_up, found, mapping)
    result.rows = rows
    result.rejected.extend(bad)
    result.not_found = [v for v in result.looked_up if v not in found]
    return result
