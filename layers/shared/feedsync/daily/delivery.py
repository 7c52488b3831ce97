"""One delivery's run within one invocation.

1. **Finish what is in flight**: every batch a run started and did not finish, of any
   generation and any invocation (``InFlight`` records, found from the run state, never from
   the current walk): an open batch is run again with its stored ids (it repeats nothing: its
   claims and plans are its own), a waiting one has its files looked up at Adobe and sent.
2. **Walk** the current content generation's sorted pending stream from its cursor (the last id
   finished); destinations added in the middle of a walk get the part behind the cursor in
   ``catchup`` batches. Each batch's ids and its in-flight record are stored before anything
   else happens.
3. **Re-send** what Adobe failed (visitors the ledger holds in ``retry`` for this delivery's
   failed files, read once per run) and what an operator asked to send again (``feedsync
   retry``), in new batches with their current CRM record.

The walk record is saved with a version check: an invocation that lost its lock to another
cannot move the cursor under it. Batch numbers and claims carry the walk id, which a forget or a
re-parse never reuses.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from feedsync import metrics
from feedsync.daily.batch import BatchOutcome, run_batch
from feedsync.daily.claims import Claims
from feedsync.daily.destinations import Destination
from feedsync.daily.destinations.dryrun import DrySender
from feedsync.daily.dryledger import DryLedger
from feedsync.daily.lock import RunLock
from feedsync.daily.seen import Seen
from feedsync.daily.select import generation
from feedsync.daily.send import BatchScope, finish, load_plan, read_visitors
from feedsync.daily.shards import ranges, shard_count
from feedsync.deadline import Deadline
from feedsync.errors import FeedsyncError
from feedsync.parse.results import escape_id, pending_visitors
from feedsync.settings import EnrichSettings
from feedsync.state import tally
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import VisitorState
from feedsync.state.ports import Ledger
from feedsync.state.records import (
    BatchFigures,
    BatchKind,
    CatchUp,
    DeliveryRecord,
    FileRecord,
    FileState,
    InFlight,
    Status,
    Walk,
    total,
    walk_key,
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


def new_walk_id() -> str:
    return secrets.token_hex(3)


class DeliveryRun:
    def __init__(
        self,
        ports: EnrichPorts,
        settings: EnrichSettings,
        record: DeliveryRecord,
        deadline: Deadline,
        dry_run_id: str | None,
        shard: int | None = None,
    ) -> None:
        self.ports = ports
        self.shard = shard  # one shard of a sharded delivery (daily/shards.py), or None
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
        self.names = tuple(d.name for d in self.destinations)
        self.this_run = ThisRun()
        self.estimate = settings.first_batch_seconds
        self.walk_state = Walk(self.generation, shard=shard)
        self.abandoned: list[str] = []  # in-flight work of destinations no longer configured
        self.claims = Claims(ports.runs)
        now = dt.datetime.fromtimestamp(ports.clock(), dt.UTC)
        self.seen = Seen(ports.state, record.rsid, now, settings.miss_ttl_days)
        self._flying: set[str] = set()  # ids of the batches in flight now

    # -- the walk record --------------------------------------------------------------------
    def _load(self, generation: str, shard: int | None = None) -> Walk:
        data = self.ports.runs.walk(self.run, walk_key(generation, shard))
        return Walk.from_json(data) if data else Walk(generation, shard=shard)

    def _save(self, walk: Walk) -> None:
        if not walk.walk_id:  # a walk's id is drawn once, with its first save
            walk.walk_id = new_walk_id()
        walk.version += 1
        if not self.ports.runs.save_walk(self.run, walk.key, walk.to_json()):
            raise LostWalkError(f"{self.key}: another invocation moved this delivery's walk")
        if walk.generation == self.generation and walk.shard == self.shard:
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
            self.abandoned,
        )

    def crm_staleness(self) -> str | None:
        return self.crm.staleness(as_of(self.record))

    # -- batches ----------------------------------------------------------------------------
    def scope(self, batch: InFlight) -> BatchScope:
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
            generation=batch.generation,
            walk=batch.walk,
            number=batch.number,
            mapping=self.mapping,
            dry=self.dry,
            settle_seconds=self.settings.settle_seconds,
            clock=ports.clock,
            claims=self.claims,
            seen=self.seen,
        )

    def _open(
        self, walk: Walk, kind: BatchKind, ids: list[str], names: tuple[str, ...]
    ) -> InFlight:
        """Store the ids, take a batch number (walk save), then the in-flight record: from then
        on the batch is found by every later run until it is finished."""
        if not walk.walk_id:
            self._save(walk)
        number = walk.next_batch
        key = StateLayout.batch_ids(self.run, walk.walk_id, number)
        self.ports.state.put(key, "".join(escape_id(v) + "\n" for v in ids).encode(), "text/plain")
        walk.next_batch += 1
        self._save(walk)
        last = ids[-1] if kind is not BatchKind.RETRY else ""
        batch = InFlight(walk.walk_id, walk.generation, number, kind, key, names, last,
                         shard=walk.shard)  # fmt: skip
        self.ports.runs.save_in_flight(self.run, batch.id, batch.to_json())
        self._flying.add(batch.id)
        return batch

    def _run(self, batch: InFlight, lock: RunLock) -> None:
        """Run a batch (again, if it was cut short): look up, claim, plan, send; then count it
        in its walk once, and keep it in flight while an upload answer is to be found."""
        if lock.lost.is_set():
            raise FeedsyncError(f"{self.key}: lost the run lock to another invocation")
        destinations = [d for d in self.destinations if d.name in batch.destinations]
        ids = read_visitors(self.ports.state, batch.ids_key)
        calls_before, started = self.crm.calls, time.monotonic()
        outcome = run_batch(
            self.scope(batch), self.crm, destinations, ids,
            remember_misses=self.crm.lookups_cost_calls,
            released=batch.kind is BatchKind.RETRY,
        )  # fmt: skip
        outcome.figures.crm_calls = self.crm.calls - calls_before
        self.estimate = max(self.estimate * 0.5, 1.5 * (time.monotonic() - started), 5.0)
        self._counted(batch, outcome.figures)
        if outcome.waiting:
            waiting = replace(batch, waiting=True)
            self.ports.runs.save_in_flight(self.run, batch.id, waiting.to_json())
        else:
            self._drop(batch)
        self._count(batch, outcome)

    def _drop(self, batch: InFlight) -> None:
        self.ports.runs.drop_in_flight(self.run, batch.id)
        self._flying.discard(batch.id)

    def _counted(self, batch: InFlight, figures: BatchFigures) -> None:
        """The batch's figures and cursor, once, in its own walk (whatever generation)."""
        mine = batch.generation == self.generation and batch.shard == self.shard
        walk = self.walk_state if mine else self._load(batch.generation, batch.shard)
        if walk.walk_id != batch.walk:
            return  # a walk forgotten since: nothing of it is reported any more
        again = batch.id in walk.counted
        walk.counted = [c for c in walk.counted if c in self._flying] + [batch.id]
        if again:
            self._save(walk)
            return
        if batch.kind is BatchKind.WALK:
            walk.cursor = max(walk.cursor or "", batch.last)
            walk.figures = total([walk.figures, figures])
        elif batch.kind is BatchKind.CATCHUP:
            if walk.catchup is not None:
                walk.catchup.cursor = max(walk.catchup.cursor or "", batch.last)
        else:
            walk.retries = total([walk.retries, figures])
        self._save(walk)

    def _count(self, batch: InFlight, outcome: BatchOutcome) -> None:
        figures = outcome.figures
        self.this_run.batches += 1
        self.this_run.retried += batch.kind is BatchKind.RETRY
        self.this_run.files += outcome.files
        self.this_run.add(figures)
        if batch.kind is BatchKind.WALK:
            for name, metric in BATCH_METRICS.items():
                self.ports.metric(metric, getattr(figures, name))
        logger.info(
            "batch %d of %s done",
            batch.number,
            self.key,
            extra={"delivery": self.key, "batch": batch.id, "kind": str(batch.kind),
                   "looked_up": figures.looked_up, "matched": figures.matched,
                   "rows": figures.uploaded_rows, "rejected": figures.rejected,
                   "crm_calls": figures.crm_calls, "waiting": outcome.waiting},
        )  # fmt: skip
        if self.ports.progress is not None:
            done = self.this_run
            self.ports.progress(
                f"{self.key}: batch {batch.number} done; this run {done.batches} batches, "
                f"{done.figures.crm_calls:,} CRM calls, {done.figures.uploaded_rows:,} rows "
                f"{'built (dry run)' if self.dry else 'sent'}, {done.files} files"
            )

    # -- phase 1: what is in flight ------------------------------------------------------------
    def _in_flight(self, shards: set[int | None] | None = None) -> list[InFlight]:
        """The batches in flight of this walk's shard (or of ``shards``), oldest first."""
        wanted = {self.shard} if shards is None else shards
        return sorted(
            (b for d in self.ports.runs.in_flight(self.run)
             if (b := InFlight.from_json(d)).shard in wanted),
            key=lambda b: (b.walk, b.number),
        )  # fmt: skip

    def _finish_in_flight(self, lock: RunLock, shards: set[int | None] | None = None) -> bool:
        """Every batch in flight (of this shard, or of ``shards``), oldest first; False when
        time ran short."""
        batches = self._in_flight(shards)
        self._flying = {b.id for b in batches}
        for found in batches:
            if not self._allows():
                return False
            gone = [n for n in found.destinations if n not in self.names]
            batch = self._without(found, gone) if gone else found
            if batch is None:
                continue
            if batch.waiting:
                self._finish_waiting(batch)
            else:
                self.this_run.resumed += 1
                self._run(batch, lock)
        return True

    def _without(self, batch: InFlight, gone: list[str]) -> InFlight | None:
        """A batch of destinations no longer configured: a plan with files still to send is
        kept (and reported abandoned); a destination with no plan yet is dropped from it (its
        claims are taken over by a later batch of that destination)."""
        scope = self.scope(batch)
        stuck = []
        for name in gone:
            plan = load_plan(scope, name)
            if plan is not None and plan.state != "sent":
                stuck.append(name)
                self.abandoned.append(
                    f"batch {batch.id}: {len(plan.files) - len(plan.jobs)} file(s) for {name} "
                    f"not sent: {name} is no longer in DESTINATIONS (add it back to send them)"
                )
        if stuck:
            return None
        left = tuple(n for n in batch.destinations if n not in gone)
        batch = replace(batch, destinations=left)
        if not left:
            self._drop(batch)
            return None
        self.ports.runs.save_in_flight(self.run, batch.id, batch.to_json())
        return batch

    def _finish_waiting(self, batch: InFlight) -> None:
        """A batch whose upload answer was lost: look its files up at Adobe, send the rest."""
        scope = self.scope(batch)
        for destination in self.destinations:
            if destination.name not in batch.destinations:
                continue
            plan = load_plan(scope, destination.name)
            if plan is not None and not finish(scope, destination, plan):
                return  # still unknown: looked up again by a later run
        self.this_run.resumed += 1
        self._drop(batch)

    # -- phase 2: the walk -----------------------------------------------------------------
    def _stream(self, after: str | None, until: str | None = None) -> Iterator[list[str]]:
        """The pending stream in (after, until], in batches (bytes order, one char per byte):
        read from where ``after`` falls in each file's stream, never from its start."""
        stream = pending_visitors(self.ports.state, self.record, None, after=after)
        batch: list[str] = []
        for visitor in stream:
            if until is not None and visitor > until:
                break
            batch.append(visitor)
            if len(batch) >= self.settings.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _allows(self) -> bool:
        return self.deadline.allows(self.estimate)

    def _destinations_changed(self, walk: Walk) -> None:
        """Destinations configured since the walk began get the part behind its cursor."""
        added = tuple(n for n in self.names if n not in walk.destinations)
        if not added or walk.catchup is not None:
            return  # (one catch-up at a time; a later addition waits for the next run)
        if walk.cursor is not None:
            walk.catchup = CatchUp(added, walk.cursor)
            logger.warning("%s: %s added in the middle of the walk: catching up to %s",
                           self.key, ", ".join(added), walk.cursor)  # fmt: skip
        walk.destinations = (*walk.destinations, *added)
        self._save(walk)

    def _catch_up(self, walk: Walk, lock: RunLock) -> bool:
        catchup = walk.catchup
        if catchup is None:
            return True
        names = tuple(n for n in catchup.destinations if n in self.names)
        after = catchup.cursor if catchup.cursor is not None else walk.start
        for ids in self._stream(after, catchup.until) if names else iter(()):
            if not self._allows():
                return False
            self._run(self._open(walk, BatchKind.CATCHUP, ids, names), lock)
        walk.catchup = None
        self._save(walk)
        return True

    def _walk(self, walk: Walk, lock: RunLock) -> bool:
        """Walk on from the cursor; False when time ran short."""
        self._destinations_changed(walk)
        if not self._catch_up(walk, lock):
            return False
        if walk.done:
            return True
        names = tuple(n for n in self.names if n in walk.destinations)
        after = walk.cursor if walk.cursor is not None else walk.start
        for ids in self._stream(after, walk.until):
            if not self._allows():
                return False
            self._run(self._open(walk, BatchKind.WALK, ids, names), lock)
        walk.done = True
        self._save(walk)
        return True

    # -- phase 3: re-sends -----------------------------------------------------------------
    def _failed_files(self) -> list[FileRecord]:
        return [
            f
            for f in self.ports.runs.files(self.run)
            if f.state is FileState.FAILED and not f.resolved
        ]

    def _to_resend(self, failed: list[FileRecord]) -> list[str]:
        """Visitors the ledger holds in ``retry`` for these files, and the ones operators
        asked to send again: each file's visitors and entries read once (linear)."""
        ids: set[str] = set()
        for record in failed:
            visitors = read_visitors(self.ports.state, record.visitors_key)
            entries = self.ledger.entries(self.record.rsid, record.destination, visitors)
            ids.update(
                v
                for v, e in entries.items()
                if e.state is VisitorState.RETRY and e.claim == record.claim
            )
        for key in self._requeued():
            ids.update(read_visitors(self.ports.state, key))
        return sorted(ids)

    def _requeued(self) -> list[str]:
        return sorted(self.ports.state.list(StateLayout.requeue(self.run)))

    def _resend(self, walk: Walk, lock: RunLock) -> bool:
        """Re-send the visitors Adobe failed; False when time ran short."""
        failed = self._failed_files()
        requeued = self._requeued()
        if not failed and not requeued:
            return True
        ids = self._to_resend(failed)
        size = self.settings.batch_size
        for start in range(0, len(ids), size):
            if not self._allows():
                return False
            self._run(
                self._open(walk, BatchKind.RETRY, ids[start : start + size], self.names), lock
            )
        for record in failed:  # every released visitor is planned again (or moved on)
            self._resolve(record)
        for key in requeued:
            self.ports.state.delete(key)
        return True

    def _resolve(self, record: FileRecord) -> None:
        """Mark a failed file resolved (its released visitors no longer await a re-send, in
        the tally too); a concurrent writer's newer record is read again."""
        for _ in range(3):
            if record.resolved or self.ports.runs.save_file(
                self.run,
                replace(record, resolved=True, version=record.version + 1),
                tally.resolved(record),
            ):
                return
            fresh = self.ports.runs.file(self.run, record.id)
            if fresh is None:
                return
            record = fresh

    # -- the whole run -----------------------------------------------------------------------
    def work(self, lock: RunLock) -> Status:
        self.walk_state = self._load(self.generation, self.shard)
        if self.shard is not None:
            return self._work_shard(lock)
        if not self.walk_state.destinations:  # a new walk (or one saved before they were kept)
            self.walk_state.destinations = self.names
        if not self._finish_in_flight(lock):
            return Status.IN_PROGRESS
        walk = self.walk_state
        if walk.shards or self._shard(walk):
            if not self._shards_done(walk, lock):
                return Status.SHARDED
        elif not self._walk(walk, lock):
            return Status.IN_PROGRESS
        if not self.dry and not self._resend(self.walk_state, lock):
            return Status.IN_PROGRESS
        # what is left in flight waits for Adobe's answer (or for a destination to come back)
        return Status.WAITING if self._flying else Status.COMPLETE

    # -- shards ------------------------------------------------------------------------------
    def _shard(self, walk: Walk) -> bool:
        """A new walk of a delivery too large for one chain of invocations: cut into shards
        (their ranges saved in the walk), which the shard runner starts."""
        runner = self.ports.shards
        if runner is None or walk.cursor is not None or walk.done or self.dry:
            return False
        settings = self.settings
        count = shard_count(self.record.visitors_pending, settings.shard_visitors,
                            settings.shards, settings.max_shards)  # fmt: skip
        if count <= 1:
            return False
        walk.shards = ranges(self.ports.state, self.record, count)
        self._start_shards(walk)
        return True

    def _start_shards(self, walk: Walk) -> None:
        """(Re)start the shard runner; the start is counted in the walk first, so a start
        whose answer is lost is found again under the same name."""
        runner = self.ports.shards
        assert runner is not None
        walk.shard_runs += 1
        self._save(walk)
        said = runner.start(self.key, len(walk.shards), self._shard_run_name(walk))
        logger.info("%s cut into %d shards (start %d): %s", self.key, len(walk.shards),
                    walk.shard_runs, said)  # fmt: skip

    def _shard_run_name(self, walk: Walk) -> str:
        return f"{self.key}-{walk.walk_id}-{walk.shard_runs}"

    def _shards_done(self, walk: Walk, lock: RunLock) -> bool:
        """Every shard walked its range; then their batches still waiting for Adobe's answer
        are finished here (each under its shard's lock), and the delivery's walk is done."""
        if not self._shard_walks_done(walk):
            runner = self.ports.shards
            if runner is None or self.dry or runner.running(self._shard_run_name(walk)):
                return False
            # the runner stopped short (a shard failed for good): start it again (a runner in
            # this process has walked them all when it returns)
            self._start_shards(walk)
            if not self._shard_walks_done(walk):
                return False
        for n in range(len(walk.shards)):
            shard_lock = RunLock(self.ports.runs, f"{self.run}#s{n}", self.ports.owner,
                                 self.settings.lock_lease, self.settings.heartbeat,
                                 self.ports.clock)  # fmt: skip
            if not shard_lock.acquire():
                return False  # a shard's run is still finishing
            try:
                flying = self._flying
                finished = self._finish_in_flight(lock, {n})
                self._flying = flying | self._flying
            finally:
                shard_lock.release()
            if not finished:
                return False
        if not walk.done:
            walk.done = True
            self._save(walk)
        return True

    def _shard_walks_done(self, walk: Walk) -> bool:
        return all(self._load(self.generation, n).done for n in range(len(walk.shards)))

    def _work_shard(self, lock: RunLock) -> Status:
        """One shard: its own batches in flight, then its range of the stream."""
        parent = self._load(self.generation)
        if self.shard is None or self.shard >= len(parent.shards):
            raise FeedsyncError(f"{self.key}: no shard {self.shard} in the current walk")
        walk = self.walk_state
        if not walk.version:
            walk.start, walk.until = parent.shards[self.shard]
            walk.destinations = parent.destinations or self.names
        if not self._finish_in_flight(lock):
            return Status.IN_PROGRESS
        if not self._walk(walk, lock):
            return Status.IN_PROGRESS
        return Status.WAITING if self._flying else Status.COMPLETE

    def figures(self) -> BatchFigures:
        return self.walk_state.figures
