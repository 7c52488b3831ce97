"""One batch of a run: look up, build and send per destination, record the ledger, checkpoint.

A batch checkpoint (StateTable) holds the batch's figures and two lists that keep the delivery
open: ``waiting`` (destinations with a file whose upload answer was lost) and ``retry``
(destinations where Adobe failed a file; reconciliation adds them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedsync.crm.sources import CrmSource
from feedsync.daily.destinations import Destination
from feedsync.daily.lookup import LookupResult, look_up
from feedsync.daily.send import BatchScope, Delivered, deliver
from feedsync.state.ports import Ledger
from feedsync.state.records import (
    BatchFigures,
    LedgerEntry,
    LedgerStatus,
)


@dataclass
class Checkpoint:
    figures: BatchFigures
    waiting: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return bool(self.waiting or self.retry)

    def to_json(self) -> dict[str, object]:
        return {**self.figures.to_json(), "waiting": self.waiting, "retry": self.retry}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Checkpoint:
        waiting, retry = data.get("waiting") or [], data.get("retry") or []
        assert isinstance(waiting, list) and isinstance(retry, list)
        return cls(BatchFigures.from_json(dict(data)), list(waiting), list(retry))


def _ledger_entries(
    found: LookupResult,
    delivered: dict[str, Delivered],
    delivery: str,
) -> Iterable[tuple[str, LedgerEntry]]:
    sent = {v for d in delivered.values() for v in d.visitors}
    refused = {r.visitor for d in delivered.values() for r in d.rejected} - sent
    for visitor in sent:
        previous = found.entries.get(visitor)
        retry = previous.retry - set(delivered) if previous else frozenset()
        attempts = previous.attempts + 1 if previous else 1
        status = LedgerStatus.RETRY if retry else LedgerStatus.UPLOADED
        yield visitor, LedgerEntry(status, delivery, frozenset(retry), attempts)
    for visitor in refused | {r.visitor for r in found.rejected}:
        yield visitor, LedgerEntry(LedgerStatus.REJECTED, delivery)
    for visitor in found.not_found:
        yield visitor, LedgerEntry(LedgerStatus.NOT_FOUND, delivery)


def run_batch(
    scope: BatchScope,
    ledger: Ledger,
    crm: CrmSource,
    destinations: list[Destination],
    ids: list[str],
    retry_only: bool = False,
) -> Checkpoint:
    """One batch (or, with ``retry_only``, the re-send of its visitors Adobe failed)."""
    found = look_up(ledger, crm, scope.mapping, scope.rsid, ids, only_retries=retry_only)
    delivered = {d.name: deliver(scope, d, found.rows_for(d.name)) for d in destinations}
    if not scope.dry:
        ledger.record(scope.rsid, _ledger_entries(found, delivered, scope.delivery_key))
    figures = BatchFigures(
        pending=0 if retry_only else found.ids,
        already_enriched=0 if retry_only else found.already_enriched,
        looked_up=len(found.looked_up),
        matched=found.found,
        uploaded_rows=len({v for d in delivered.values() for v in d.visitors}),
        not_found=len(found.not_found),
        jobs={name: d.jobs for name, d in delivered.items()},
    )
    figures.add_rejected(
        list(itertools.chain(found.rejected, *(d.rejected for d in delivered.values())))
    )
    waiting = [name for name, d in delivered.items() if d.waiting]
    return Checkpoint(figures, waiting=waiting)


def merge(earlier: BatchFigures, later: BatchFigures) -> BatchFigures:
    """A batch's figures after a resumed or retried part of it ran."""
    from feedsync.state.records import total

    out = total([earlier, later])
    out.jobs = {}
    for name in dict.fromkeys([*earlier.jobs, *later.jobs]):
        by_file = {j.file: j for j in earlier.jobs.get(name, [])}
        by_file.update({j.file: j for j in later.jobs.get(name, [])})  # later state wins
        out.jobs[name] = list(by_file.values())
    return out


def resume_waiting(
    scope: BatchScope, destinations: list[Destination], checkpoint: Checkpoint
) -> Checkpoint:
    """Finish the uploads of a batch whose answers were lost (from the stored plan)."""
    jobs = {}
    still: list[str] = []
    for destination in destinations:
        if destination.name not in checkpoint.waiting:
            continue
        delivered = deliver(scope, destination, [])
        jobs[destination.name] = delivered.jobs
        if delivered.waiting:
            still.append(destination.name)
    figures = merge(checkpoint.figures, BatchFigures(jobs=jobs))
    return Checkpoint(figures, waiting=still, retry=checkpoint.retry)
