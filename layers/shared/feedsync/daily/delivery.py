"""One delivery's run within one invocation.

1. **Walk** the current content generation's sorted pending stream from its cursor (the last id
   finished): each batch's ids are stored before anything else happens, so a batch cut short is
   finished later with exactly those ids, whatever BATCH_SIZE, the code or the delivery's
   generation are by then.
2. **Finish** batches whose upload answer was lost (``waiting``), once Adobe can be asked.
3. **Re-send** what Adobe failed: every visitor of this delivery's failed files that the ledger
   holds in ``retry`` (from any generation), in new batches with their current CRM record.

The walk record is saved with a version check: an invocation that lost its lock to another
cannot move the cursor under it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from feedsync import metrics
from feedsync.daily.batch import BatchOutcome, run_batch
from feedsync.daily.destinations import Destination
from feedsync.daily.destinations.dryrun import DrySender
from feedsync.daily.dryledger import DryLedger
from feedsync.daily.lock import RunLock
from feedsync.daily.select import generation
from feedsync.daily.send import BatchScope, finish, load_plan, read_visitors
from feedsync.deadline import Deadline
from feedsync.errors import FeedsyncError
from feedsync.parse.results import escape_id, pending_visitors
from feedsync.settings import EnrichSettings
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import VisitorState
from feedsync.state.ports import Ledger
from feedsync.state.records import (
    BatchFigures,
    DeliveryRecord,
    FileRecord,
    FileState,
    OpenBatch,
    Status,
    Walk,
    total,
)
from feedsync.views.report import ReportInputs, ThisRun

if TYPE_CHECKING:
    from feedsync.daily.run import EnrichPorts

logger = logging.getLogger(__name__)

BATCH_METRICS = {
    "pending": metrics.VISITORS_PENDING,
    "looked_up": metrics.VISITORS_LOOKED_UP,
    "matched": metrics.VISITORS_MATCHED,
    "uploaded_rows": metrics.ROWS_UPLOADED,
    "rejected": metrics.ROWS_REJECTED,
    "crm_calls": metrics.CRM_CALLS,
}
# The report suite's day may end up to 14 hours after midnight UTC (UTC-12 .. UTC+14).
LATEST_DAY_END = dt.timedelta(days=1, hours=14)


class LostWalkError(FeedsyncError):
    """Another invocation saved this delivery's walk in between (the lock was lost)."""


def as_of(record: DeliveryRecord) -> dt.datetime:
    """How current a CRM copy must be for this delivery's misses to be final: the delivery's
    close (when its visitors had arrived), at most the latest end of its day in any zone."""
    day = dt.datetime.fromisoformat(record.day).replace(tzinfo=dt.UTC)
    latest = day + LATEST_DAY_END
    if record.closed_at:
        closed = dt.datetime.fromisoformat(record.closed_at.replace("Z", "+00:00"))
        if closed.tzinfo is None:
            closed = closed.replace(tzinfo=dt.UTC)
        return min(closed, latest)
    return latest


class DeliveryRun:
    def __init__(
        self,
        ports: EnrichPorts,
        settings: EnrichSettings,
        record: DeliveryRecord,
        deadline: Deadline,
        dry_run_id: str | None,
    ) -> None:
        self.ports = ports
        self.settings = settings
        self.record = record
        self.deadline = deadline
        self.dry = dry_run_id is not None
        self.key = record.key
        self.run = StateLayout.run(self.key, dry_run_id)
        self.generation = generation(record)
        self.mapping, self.crm = ports.for_suite(record.rsid)
        self.ledger: Ledger = DryLedger(ports.ledger) if self.dry else ports.ledger
        # a dry run sends nothing, whatever destinations it was handed
        self.destinations = [
            d
            if d.dry_run or not self.dry
            else Destination(d.name, d.builder, DrySender(d.name), True)
            for d in ports.destinations
        ]
        self.this_run = ThisRun()
        self.estimate = settings.first_batch_seconds
        self.walk_state = Walk(self.generation)

    # -- the walk record --------------------------------------------------------------------
    def _load(self) -> Walk:
        data = self.ports.runs.walk(self.run, self.generation)
        return Walk.from_json(data) if data else Walk(self.generation)

    def _save(self, walk: Walk) -> None:
        walk.version += 1
        if not self.ports.runs.save_walk(self.run, self.generation, walk.to_json()):
            raise LostWalkError(f"{self.key}: another invocation moved this delivery's walk")
        self.walk_state = walk

    def inputs(self) -> ReportInputs:
        return ReportInputs(
            self.ports.state,
            self.ports.runs,
            None if self.dry else self.ports.ledger,
            self.record,
            self.run,
            self.generation,
            self.dry,
        )

    def crm_staleness(self) -> str | None:
        return self.crm.staleness(as_of(self.record))

    # -- batches ----------------------------------------------------------------------------
    def scope(self, number: int) -> BatchScope:
        record, ports = self.record, self.ports
        return BatchScope(
            state=ports.state,
            runs=ports.runs,
            uploads=ports.uploads,
            ledger=self.ledger,
            run=self.run,
            delivery_key=self.key,
            delivery_id=record.delivery,
            rsid=record.rsid,
            day=dt.date.fromisoformat(record.day),
            generation=self.generation,
            number=number,
            mapping=self.mapping,
            dry=self.dry,
            settle_seconds=self.settings.settle_seconds,
            clock=ports.clock,
        )

    def _run_open(self, walk: Walk, lock: RunLock) -> BatchOutcome:
        assert walk.open is not None
        if lock.lost.is_set():
            raise FeedsyncError(f"{self.key}: lost the run lock to another invocation")
        opened = walk.open
        ids = read_visitors(self.ports.state, opened.ids_key)
        calls_before, started = self.crm.calls, time.monotonic()
        outcome = run_batch(
            self.scope(opened.number), self.crm, self.destinations, ids,
            remember_misses=self.crm.lookups_cost_calls,
        )  # fmt: skip
        outcome.figures.crm_calls = self.crm.calls - calls_before
        self.estimate = max(self.estimate * 0.5, 1.5 * (time.monotonic() - started), 5.0)
        if opened.kind == "walk":
            walk.cursor = opened.last
            walk.figures = total([walk.figures, outcome.figures])
        else:
            walk.retries = total([walk.retries, outcome.figures])
        if outcome.waiting:
            walk.waiting.append(opened.number)
        walk.open = None
        self._save(walk)
        self._count(opened, outcome)
        return outcome

    def _count(self, opened: OpenBatch, outcome: BatchOutcome) -> None:
        figures = outcome.figures
        self.this_run.batches += 1
        self.this_run.retried += opened.kind == "retry"
        self.this_run.files += outcome.files
        self.this_run.add(figures)
        if opened.kind == "walk":
            for name, metric in BATCH_METRICS.items():
                self.ports.metric(metric, getattr(figures, name))
        logger.info(
            "batch %d of %s done",
            opened.number,
            self.key,
            extra={"delivery": self.key, "batch": opened.number, "kind": opened.kind,
                   "looked_up": figures.looked_up, "matched": figures.matched,
                   "rows": figures.uploaded_rows, "rejected": figures.rejected,
                   "crm_calls": figures.crm_calls, "waiting": outcome.waiting},
        )  # fmt: skip
        if self.ports.progress is not None:
            done = self.this_run
            self.ports.progress(
                f"{self.key}: batch {opened.number} done; this run {done.batches} batches, "
                f"{done.figures.crm_calls:,} CRM calls, {done.figures.uploaded_rows:,} rows "
                f"{'built (dry run)' if self.dry else 'sent'}, {done.files} files"
            )

    def _open(self, walk: Walk, kind: str, ids: list[str], sources: tuple[str, ...] = ()) -> None:
        number = walk.next_batch
        key = StateLayout.batch_ids(self.run, self.generation, number)
        self.ports.state.put(key, "".join(escape_id(v) + "\n" for v in ids).encode(), "text/plain")
        walk.open = OpenBatch(number, kind, key, ids[-1] if kind == "walk" else "", sources)
        walk.next_batch += 1
        self._save(walk)

    def _next_ids(self, walk: Walk) -> Iterator[list[str]]:
        """The pending stream after the cursor, in batches (bytes order, one char per byte)."""
        stream = pending_visitors(self.ports.state, self.record, None)
        cursor = walk.cursor
        batch: list[str] = []
        for visitor in stream:
            if cursor is not None and visitor <= cursor:
                continue
            batch.append(visitor)
            if len(batch) >= self.settings.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- phases -----------------------------------------------------------------------------
    def _allows(self) -> bool:
        return self.deadline.allows(self.estimate)

    def _walk(self, walk: Walk, lock: RunLock) -> bool:
        """Walk on from the cursor; False when time ran short."""
        if walk.open is not None and walk.open.kind == "walk":
            self.this_run.resumed += 1
            self._run_open(walk, lock)
        if walk.done:
            return True
        for ids in self._next_ids(walk):
            if not self._allows():
                return False
            self._open(walk, "walk", ids)
            self._run_open(walk, lock)
        walk.done = True
        self._save(walk)
        return True

    def _finish_waiting(self, walk: Walk) -> None:
        """Batches whose upload answer was lost: look the files up at Adobe, send the rest."""
        still = []
        for number in walk.waiting:
            scope = self.scope(number)
            for destination in self.destinations:
                plan = load_plan(scope, destination.name)
                if plan is not None and not finish(scope, destination, plan):
                    still.append(number)
                    break
        if still != walk.waiting:
            self.this_run.resumed += len(walk.waiting) - len(still)
            walk.waiting = still
            self._save(walk)

    def _failed_files(self) -> list[FileRecord]:
        return [
            f
            for f in self.ports.runs.files(self.run)
            if f.state is FileState.FAILED and not f.resolved and f.released
        ]

    def _to_resend(self, failed: list[FileRecord]) -> list[str]:
        ids: set[str] = set()
        for record in failed:
            visitors = read_visitors(self.ports.state, record.visitors_key)
            entries = self.ledger.entries(self.record.rsid, record.destination, visitors)
            ids.update(
                v
                for v, e in entries.items()
                if e.state is VisitorState.RETRY and e.claim == record.claim
            )
        return sorted(ids)

    def _resend(self, walk: Walk, lock: RunLock) -> bool:
        """Re-send the visitors Adobe failed; False when time ran short."""
        if walk.open is not None:  # a re-send batch cut short
            self.this_run.resumed += 1
            self._run_open(walk, lock)
        failed = self._failed_files()
        previous: list[str] = []
        while failed:
            ids = self._to_resend(failed)
            if not ids or ids == previous:  # nothing left, or nothing more this run can move
                break
            previous = ids
            if not self._allows():
                return False
            sources = tuple(f.id for f in failed)
            self._open(walk, "retry", ids[: self.settings.batch_size], sources)
            self._run_open(walk, lock)
        if failed and self._to_resend(failed):
            logger.warning(
                "%s: released visitors left in retry; the next run tries again", self.key
            )
            return True
        for record in failed:  # every released visitor is planned again (or moved on)
            self.ports.runs.save_file(self.run, replace(record, resolved=True))
        return True

    def work(self, lock: RunLock) -> Status:
        walk = self._load()
        self.walk_state = walk
        if not self._walk(walk, lock):
            return Status.IN_PROGRESS
        self._finish_waiting(walk)
        if not self.dry and not self._resend(walk, lock):
            return Status.IN_PROGRESS
        return Status.WAITING if walk.waiting else Status.COMPLETE

    def figures(self) -> BatchFigures:
        return self.walk_state.figures
