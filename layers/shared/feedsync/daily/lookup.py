"""One batch's lookup: what the ledger says of each visitor at each destination, the CRM asked
for those with something left to do, the records mapped to rows.

A visitor has work at a destination when the ledger has no live entry for it there, when Adobe
failed its file (``retry``), when the entry is this very batch's own (a re-run after a crash),
or when it is ``planned`` by a batch that is dead (no in-flight record: the delivery was
forgotten under it). Everything else is settled: in flight in a live batch, sent, accepted,
given up, or a recent miss - and is counted by what the ledger said of it (``earlier``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
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
    # destination -> visitors ``planned`` by a dead batch (claimed over its claim)
    orphans: dict[str, set[str]] = field(default_factory=dict)
    earlier: Counter[str] = field(default_factory=Counter)  # the settled ones, by state
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


def _has_work(entry: LedgerEntry | None, claim: str, dead: Callable[[str], bool]) -> bool:
    if entry is None or entry.claim == claim:
        return True
    if entry.state is VisitorState.PLANNED:
        return dead(entry.claim)
    return entry.state is VisitorState.RETRY


def _earlier(states: set[VisitorState]) -> str:
    """One word for a visitor with nothing left to do: the least finished destination's."""
    if VisitorState.GIVEN_UP in states:
        return "given_up"
    if states & {VisitorState.PLANNED, VisitorState.SENT}:
        return "in_flight"
    if VisitorState.NOT_FOUND in states:
        return "not_found"
    if VisitorState.REJECTED in states:
        return "rejected"
    return "accepted"


def look_up(
    ledger: Ledger,
    crm: CrmSource,
    mapping: Mapping,
    rsid: str,
    destinations: Sequence[str],
    ids: Sequence[str],
    claim: str,
    dead: Callable[[str], bool] = lambda claim: False,
) -> LookupResult:
    """``dead(claim)``: the batch that claim names has no in-flight record any more."""
    entries = {d: ledger.entries(rsid, d, ids) for d in destinations}
    work: dict[str, set[str]] = {}
    orphans: dict[str, set[str]] = {}
    earlier: Counter[str] = Counter()
    for visitor in ids:
        wanted = {d for d in destinations if _has_work(entries[d].get(visitor), claim, dead)}
        for d in wanted:
            entry = entries[d].get(visitor)
            if entry and entry.state is VisitorState.PLANNED and entry.claim != claim:
                orphans.setdefault(d, set()).add(visitor)  # a dead batch's: claimed over it
        if wanted:
            work[visitor] = wanted
        else:
            earlier[_earlier({entries[d][visitor].state for d in destinations})] += 1
    result = LookupResult(len(ids), entries, work, orphans=orphans, earlier=earlier)
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
