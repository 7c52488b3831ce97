"""One batch's lookup: what the ledger says of each visitor at each destination, the CRM asked
for those with something left to do, the records mapped to rows.

A visitor has work at a destination when the ledger has no live entry for it there, when Adobe
failed its file (``retry``), or when the entry is this very batch's own (a re-run after a
crash). Everything else is settled: sent, accepted, given up, or a recent miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from feedsync.crm.sources import CrmSource
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.state.ledger import LedgerEntry, VisitorState
from feedsync.state.ports import Ledger
from feedsync.state.records import Rejected

NOT_A_FILTER_VALUE = "visitor id holds ',' (cannot be a CRM filter value)"


@dataclass
class LookupResult:
    ids: int  # the batch's visitors
    entries: dict[str, dict[str, LedgerEntry]]  # destination -> visitor -> live entry
    work: dict[str, set[str]]  # visitor -> destinations with something left to do
    looked_up: list[str] = field(default_factory=list)
    found: int = 0
    rows: list[MappedRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    @property
    def already_enriched(self) -> int:
        return self.ids - len(self.work)

    def rows_for(self, destination: str) -> list[MappedRow]:
        return [row for row in self.rows if destination in self.work.get(row.visitor, ())]


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


def _has_work(entry: LedgerEntry | None, claim: str) -> bool:
    if entry is None or entry.claim == claim:
        return True
    return entry.state is VisitorState.RETRY


def look_up(
    ledger: Ledger,
    crm: CrmSource,
    mapping: Mapping,
    rsid: str,
    destinations: Sequence[str],
    ids: Sequence[str],
    claim: str,
) -> LookupResult:
    entries = {d: ledger.entries(rsid, d, ids) for d in destinations}
    work: dict[str, set[str]] = {}
    for visitor in ids:
        wanted = {d for d in destinations if _has_work(entries[d].get(visitor), claim)}
        if wanted:
            work[visitor] = wanted
    result = LookupResult(len(ids), entries, work)
    todo = [v for v in ids if v in work]
    result.looked_up = [v for v in todo if "," not in v]
    result.rejected = [Rejected(v, NOT_A_FILTER_VALUE) for v in todo if "," in v]
    found = crm.lookup(result.looked_up) if result.looked_up else {}
    result.found = len(found)
    rows, bad = map_records(result.looked_up, found, mapping)
    result.rows = rows
    result.rejected.extend(bad)
    result.not_found = [v for v in result.looked_up if v not in found]
    return result
