"""One batch: look its visitors up, move them in the ledger, build and send each destination's
files. Running a batch again (after a crash, with the same ids) repeats nothing: its plans are
reused, its ledger entries are its own, and its figures come out the same.

Order, per destination with no plan yet: misses (not_found, rejected by the mapping) ->
claims (planned) -> files built and stored -> plan saved. Then every plan is sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from feedsync.crm.sources import CrmSource
from feedsync.daily import seen
from feedsync.daily.destinations import BuiltFiles, Destination
from feedsync.daily.lookup import LookupResult, look_up
from feedsync.daily.send import (
    BatchScope,
    Plan,
    finish,
    load_plan,
    plan_files,
    read_refused,
    read_visitors,
)
from feedsync.state import ledger as moves
from feedsync.state.ledger import VisitorState
from feedsync.state.records import BatchFigures, Rejected


@dataclass
class BatchOutcome:
    figures: BatchFigures
    waiting: list[str] = field(default_factory=list)  # destinations with an answer to find
    files: int = 0  # files Adobe took in this invocation


def _record_misses(
    scope: BatchScope, destination: str, found: LookupResult, remember: bool
) -> None:
    """A released visitor (``retry``) the CRM no longer knows, or whose record the mapping
    refuses, leaves ``retry`` in the ledger; other misses are not written there (``remember``:
    the layout before S3 miss chunks)."""
    entries = found.entries[destination]

    def wanted(visitor: str) -> bool:
        if destination not in found.work.get(visitor, ()):
            return False
        # a released visitor that cannot be re-sent leaves ``retry`` whatever the source
        entry = entries.get(visitor)
        return remember or (entry is not None and entry.state is VisitorState.RETRY)

    mine = [
        moves.miss(v, VisitorState.NOT_FOUND, scope.delivery_key, scope.claim)
        for v in found.not_found
        if wanted(v)
    ]
    mine += [
        moves.miss(r.visitor, VisitorState.REJECTED, scope.delivery_key, scope.claim, r.reason)
        for r in found.rejected
        if wanted(r.visitor)
    ]
    if mine:
        scope.ledger.move(scope.rsid, destination, mine)


def _new_plan(
    scope: BatchScope, destination: Destination, found: LookupResult, remember: bool
) -> Plan:
    """Files built first (a pure function), then one conditional claim per visitor they hold:
    a row the destination's rules refuse is never claimed, so it costs no ledger write."""
    _record_misses(scope, destination.name, found, remember)
    rows = found.rows_for(destination.name)
    built = destination.builder.build(scope.batch(rows))
    refused = {r.visitor for r in built.rejected}
    entries = found.entries[destination.name]
    orphans = found.orphans.get(destination.name, set())
    claims = [moves.claim(r.visitor, entries.get(r.visitor), scope.delivery_key, scope.claim,
                          orphan=r.visitor in orphans)
              for r in rows if r.visitor not in refused]  # fmt: skip
    claimed = scope.ledger.move(scope.rsid, destination.name, claims) if claims else set()
    if len(claimed) < len(claims):  # another invocation took some: our files leave them out
        ours = destination.builder.build(scope.batch([r for r in rows if r.visitor in claimed]))
        built = BuiltFiles(ours.files, built.rejected)
    work = found.work
    mapping_refused = [r for r in found.rejected if destination.name in work.get(r.visitor, ())]
    return plan_files(scope, destination, built, mapping_refused)


def run_batch(
    scope: BatchScope,
    crm: CrmSource,
    destinations: list[Destination],
    ids: list[str],
    remember_misses: bool = True,
    released: bool = False,
) -> BatchOutcome:
    """``released``: a re-send batch (visitors in ``retry``): the ledger is read for all of
    them, so one the CRM no longer knows leaves ``retry``."""
    names = [d.name for d in destinations]
    found = look_up(scope.ledger, crm, scope.mapping, scope.rsid, names, ids, scope.claim,
                    scope.claims, ledger_first=released, seen=scope.seen)  # fmt: skip
    if remember_misses and not released and not scope.dry:
        # a lookup costs a CRM call: its misses are remembered in S3, not in the ledger
        misses = [*found.not_found, *(r.visitor for r in found.rejected)]
        now = dt.datetime.fromtimestamp(scope.clock(), dt.UTC)
        seen.record_misses(scope.state, scope.rsid, scope.walk, scope.number, misses, now)
    outcome = BatchOutcome(BatchFigures())
    plans: dict[str, Plan] = {}
    for destination in destinations:
        plan = load_plan(scope, destination.name)
        if plan is None:
            plan = _new_plan(scope, destination, found, False)
        sent_before = len(plan.jobs)
        if not finish(scope, destination, plan):
            outcome.waiting.append(destination.name)
        outcome.files += len(plan.jobs) - sent_before
        plans[destination.name] = plan
    outcome.figures = _figures(scope, found, plans)
    return outcome


def _figures(scope: BatchScope, found: LookupResult, plans: dict[str, Plan]) -> BatchFigures:
    in_files = {
        visitor
        for plan in plans.values()
        for planned in plan.files
        for visitor in read_visitors(scope.state, planned.visitors_key)
    }
    figures = BatchFigures(
        pending=found.ids,
        already_enriched=found.already_enriched,
        looked_up=len(found.looked_up),
        matched=found.found,
        uploaded_rows=len(in_files),  # visitors in this batch's files (any destination)
        not_found=len(found.not_found),
        earlier=dict(found.earlier),
    )
    # each visitor once: the mapping's refusal, else the first destination's own
    refused: dict[str, Rejected] = {r.visitor: r for r in found.rejected}
    for plan in plans.values():
        if plan.refused_key:
            for row in read_refused(scope.state, plan.refused_key):
                if row.visitor not in in_files:
                    refused.setdefault(row.visitor, row)
    figures.add_rejected(list(refused.values()))
    return figures
