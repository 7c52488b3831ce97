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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from feedsync.crm.sources import CrmSource
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.daily.seen import Seen
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


class ClaimState(Protocol):
    def dead(self, claim: str, destination: str) -> bool: ...

    def accepted(self, claim: str, destination: str) -> bool: ...


class _Alive:
    """No run state to ask (a test's own lookup): every claim is alive, nothing accepted."""

    def dead(self, claim: str, destination: str) -> bool:
        return False

    def accepted(self, claim: str, destination: str) -> bool:
        return False


def _has_work(entry: LedgerEntry | None, claim: str, destination: str, claims: ClaimState) -> bool:
    if entry is None or entry.claim == claim:
        return True
    if entry.state is VisitorState.PLANNED:
        return claims.dead(entry.claim, destination)
    return entry.state is VisitorState.RETRY


def _word(entry: LedgerEntry, destination: str, claims: ClaimState) -> str:
    """What a settled entry means: a claim's batch says whether Adobe accepted its files."""
    state = entry.state
    if state in (VisitorState.PLANNED, VisitorState.SENT):
        return "accepted" if claims.accepted(entry.claim, destination) else "in_flight"
    return {VisitorState.GIVEN_UP: "given_up", VisitorState.NOT_FOUND: "not_found",
            VisitorState.REJECTED: "rejected"}.get(state, "accepted")  # fmt: skip


def _earlier(words: set[str]) -> str:
    """One word for a visitor with nothing left to do: the least finished destination's."""
    for word in ("given_up", "in_flight", "not_found", "rejected"):
        if word in words:
            return word
    return "accepted"


def look_up(
    ledger: Ledger,
    crm: CrmSource,
    mapping: Mapping,
    rsid: str,
    destinations: Sequence[str],
    ids: Sequence[str],
    claim: str,
    claims: ClaimState | None = None,
    ledger_first: bool | None = None,
    seen: Seen | None = None,
) -> LookupResult:
    """``claims``: what another batch's claim stands for (dead, accepted), from the run state.

    First the visitors settled recently are set aside without any DynamoDB read (``seen``:
    accepted at every destination, and - where a lookup costs a CRM call - recent misses, from
    sorted objects in S3). Then the CRM is asked, and the ledger only for the visitors it knows:
    a miss costs no ledger read or write. ``ledger_first`` (a re-send of released visitors)
    reads the ledger for all of them first. Ledger reads here are eventually consistent (half
    the read units): a stale "absent" only leads to a claim the ledger's condition refuses."""
    known = claims or _Alive()
    first = crm.lookups_cost_calls if ledger_first is None else ledger_first
    skipped: Counter[str] = Counter()
    if seen is not None and not first:  # settled recently: no CRM call, no ledger read
        accepted = seen.accepted(ids, destinations)
        missed = seen.misses(ids) - accepted if crm.lookups_cost_calls else set()
        skipped.update(accepted=len(accepted), not_found=len(missed))
        ids = [v for v in ids if v not in accepted and v not in missed]
    filterable = [v for v in ids if "," not in v]
    found: dict[str, dict[str, Any]] = {}
    if not first:
        found = crm.lookup(filterable) if filterable else {}
    checked = list(ids) if first else [v for v in ids if v in found or "," in v]
    entries = {d: ledger.entries(rsid, d, checked, consistent=False) for d in destinations}
    work, orphans, earlier = _work(ids, destinations, entries, claim, known)
    earlier.update(skipped)
    total = len(ids) + sum(skipped.values())
    result = LookupResult(total, entries, work, orphans=orphans, earlier=earlier)
    todo = [v for v in ids if v in work]
    result.looked_up = [v for v in todo if "," not in v]
    result.rejected = [Rejected(v, NOT_A_FILTER_VALUE) for v in todo if "," in v]
    if first:
        found = crm.lookup(result.looked_up) if result.looked_up else {}
    found = {v: found[v] for v in result.looked_up if v in found}
    result.found = len(found)
    rows, bad = map_records(result.looked_up, found, mapping)
    result.rows = rows
    result.rejected.extend(bad)
    result.not_found = [v for v in result.looked_up if v not in found]
    return result


def _work(
    ids: Sequence[str],
    destinations: Sequence[str],
    entries: dict[str, dict[str, LedgerEntry]],
    claim: str,
    known: ClaimState,
) -> tuple[dict[str, set[str]], dict[str, set[str]], Counter[str]]:
    """Per visitor, the destinations with something left to do (and whose planned entries are
    a dead batch's); the settled ones counted by what the ledger says of them."""
    work: dict[str, set[str]] = {}
    orphans: dict[str, set[str]] = {}
    earlier: Counter[str] = Counter()
    for visitor in ids:
        wanted = {d for d in destinations
                  if _has_work(entries[d].get(visitor), claim, d, known)}  # fmt: skip
        for d in wanted:
            entry = entries[d].get(visitor)
            if entry and entry.state is VisitorState.PLANNED and entry.claim != claim:
                orphans.setdefault(d, set()).add(visitor)  # a dead batch's: claimed over it
        if wanted:
            work[visitor] = wanted
        else:
            words = {_word(entries[d][visitor], d, known) for d in destinations}
            earlier[_earlier(words)] += 1
    return work, orphans, earlier
