"""The daily run: complete deliveries -> pending visitors -> CRM -> Adobe, exactly once.

First, reconciliation reads Adobe's verdict on files sent earlier (a failure reopens its
delivery). Then, for each delivery to work on (``select``), oldest first, the sorted pending
visitors are cut into fixed batches (batch i is always the same ids) and each batch is run
(``batch``): ledger, CRM, mapping, files built once and sent (``deliver``), ledger, checkpoint.
Batches already done are skipped; a batch waiting for a lost upload answer is resumed from its
stored files; a batch Adobe failed is re-sent to that destination. When the invocation runs
short of time the run stops between batches and asks for a continuation; a daily CRM quota stop
leaves the rest for the next run; an error in one delivery is recorded in its report and the
run goes on with the next one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from feedsync import metrics
from feedsync.crm.sources import CrmSource
from feedsync.daily.batch import Checkpoint, merge, resume_waiting, run_batch
from feedsync.daily.destinations import Destination
from feedsync.daily.lock import RunLock
from feedsync.daily.mapping import Mapping
from feedsync.daily.reconcile import Reconciler, ReconcileSummary
from feedsync.daily.select import delivery_keys, generation
from feedsync.daily.send import BatchScope
from feedsync.deadline import Deadline
from feedsync.errors import FeedsyncError, NotConfiguredError, QuotaExhaustedError
from feedsync.parse.results import load_record, pending_visitors
from feedsync.settings import EnrichSettings, RunRequest
from feedsync.state.layout import StateLayout
from feedsync.state.ports import Ledger, Metric, RunState, UploadLog
from feedsync.state.records import (
    FIGURES,
    BatchFigures,
    DeliveryRecord,
    Json,
    Status,
    Verdict,
)
from feedsync.storage import ObjectStore, put_json
from feedsync.views.report import ThisRun, build_report
from feedsync.views.report_html import render as render_html

logger = logging.getLogger(__name__)

BATCH_METRICS = {
    "pending": metrics.VISITORS_PENDING,
    "looked_up": metrics.VISITORS_LOOKED_UP,
    "matched": metrics.VISITORS_MATCHED,
    "uploaded_rows": metrics.ROWS_UPLOADED,
    "rejected": metrics.ROWS_REJECTED,
    "crm_calls": metrics.CRM_CALLS,
}


def _no_metric(name: str, value: float) -> None:
    return None


@dataclass
class EnrichPorts:
    state: ObjectStore
    ledger: Ledger
    runs: RunState
    uploads: UploadLog
    crm: CrmSource
    mapping: Mapping
    destinations: list[Destination]
    continue_later: Callable[[dict[str, Any]], None] | None = None
    metric: Metric = _no_metric
    # per report suite (config/mapping.<rsid>.json); by default ``mapping`` and ``crm``
    suite: Callable[[str], tuple[Mapping, CrmSource]] | None = None
    progress: Callable[[str], None] | None = None  # one line per batch (the CLI's terminal)
    owner: str = field(default_factory=lambda: f"local-{time.time_ns()}")
    clock: Callable[[], float] = time.time  # wall clock (leases, settle and stuck ages)

    def for_suite(self, rsid: str) -> tuple[Mapping, CrmSource]:
        return self.suite(rsid) if self.suite is not None else (self.mapping, self.crm)


class ContinuationLimitError(FeedsyncError):
    pass


def _batches(ids: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(ids, size)):
        yield chunk


class DeliveryRun:
    """One delivery's run within one invocation."""

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
        # Checkpoints belong to one content generation: a re-delivery is walked again (the
        # ledger keeps visitors already uploaded from being sent twice).
        self.state_key = f"{self.run}@{self.generation}"
        self.mapping, self.crm = ports.for_suite(record.rsid)
        self.this_run = ThisRun()
        self.done: dict[int, Checkpoint] = {}
        self.estimate = settings.first_batch_seconds

    def scope(self, index: int) -> BatchScope:
        record, ports = self.record, self.ports
        return BatchScope(
            state=ports.state,
            runs=ports.runs,
            uploads=ports.uploads,
            run=self.run,
            state_key=self.state_key,
            delivery_key=self.key,
            delivery_id=record.delivery,
            rsid=record.rsid,
            day=dt.date.fromisoformat(record.day),
            generation=self.generation,
            index=index,
            mapping=self.mapping,
            dry=self.dry,
            settle_seconds=self.settings.settle_seconds,
            clock=ports.clock,
        )

    def _step(self, index: int, ids: list[str]) -> Checkpoint | None:
        """Run whatever batch ``index`` still needs; None when nothing."""
        ports, previous = self.ports, self.done.get(index)
        if previous is None:
            self.this_run.batches += 1
            return run_batch(self.scope(index), ports.ledger, self.crm, ports.destinations, ids)
        if previous.waiting:
            self.this_run.resumed += 1
            return resume_waiting(self.scope(index), ports.destinations, previous)
        if previous.retry:
            self.this_run.retried += 1
            again = [d for d in ports.destinations if d.name in previous.retry]
            retried = run_batch(self.scope(index), ports.ledger, self.crm, again, ids, True)
            return Checkpoint(merge(previous.figures, retried.figures), retried.waiting)
        return None

    def batch(self, index: int, ids: list[str]) -> None:
        calls_before = self.crm.calls
        started = time.monotonic()
        previous = self.done.get(index)
        checkpoint = self._step(index, ids)
        if checkpoint is None:
            return
        calls = self.crm.calls - calls_before
        checkpoint.figures.crm_calls += calls
        self.done[index] = checkpoint
        self.ports.runs.save_batch(self.state_key, index, checkpoint.to_json())
        gained = _difference(checkpoint.figures, previous.figures if previous else None)
        self.this_run.add(gained)
        logger.info(
            "batch %d of %s done",
            index,
            self.key,
            extra={
                "delivery": self.key,
                "batch": index,
                "step": "retry"
                if previous and previous.retry
                else "resume"
                if previous
                else "batch",
                "looked_up": gained.looked_up,
                "matched": gained.matched,
                "rows_sent": gained.uploaded_rows,
                "rejected": gained.rejected,
                "crm_calls": gained.crm_calls,
                "waiting": checkpoint.waiting,
            },
        )
        for name, metric in BATCH_METRICS.items():
            self.ports.metric(metric, getattr(gained, name))
        self.estimate = max(self.estimate * 0.5, 1.5 * (time.monotonic() - started), 5.0)
        if self.ports.progress is not None:
            total = self.this_run.figures
            self.ports.progress(
                f"{self.key}: batch {index} done; this run {self.this_run.batches} batches, "
                f"{total.crm_calls:,} CRM calls, {total.uploaded_rows:,} rows sent, "
                f"{sum(len(j) for j in total.jobs.values())} uploads"
            )

    def walk(self, lock: RunLock) -> Status:
        """Every batch that still needs work, while time and the lock last."""
        self.done = {
            i: Checkpoint.from_json(c) for i, c in self.ports.runs.batches(self.state_key).items()
        }
        size = self.settings.batch_size
        for index, ids in enumerate(
            _batches(
                pending_visitors(self.ports.state, self.record, self.settings.feed_encoding), size
            )
        ):
            done = self.done.get(index)
            if done is not None and not done.open:
                continue
            if not self.deadline.allows(self.estimate):
                return Status.IN_PROGRESS
            if lock.lost.is_set():
                raise FeedsyncError(f"{self.key}: lost the run lock to another invocation")
            self.batch(index, ids)
        if any(c.waiting for c in self.done.values()):
            return Status.WAITING
        return Status.COMPLETE

    def open_batches(self) -> dict[str, list[int]]:
        return {
            "waiting": sorted(i for i, c in self.done.items() if c.waiting),
            "retry": sorted(i for i, c in self.done.items() if c.retry),
        }

    def report(self, status: Status, error: str | None) -> Json:
        record = self.record
        head = {
            "delivery": record.delivery,
            "key": self.key,
            "rsid": record.rsid,
            "day": record.day,
            "dry_run": self.dry,
            "generation": self.generation,
        }
        verdicts = [Verdict.from_json(v) for v in self.ports.runs.verdicts(self.state_key)]
        done = {i: c.figures for i, c in self.done.items()}
        return build_report(head, done, self.this_run, status, error, self.open_batches(), verdicts)


def _difference(now: BatchFigures, before: BatchFigures | None) -> BatchFigures:
    """What a batch step added to the batch's figures (this run's share)."""
    if before is None:
        return now
    out = BatchFigures(**{n: getattr(now, n) - getattr(before, n) for n in (*FIGURES, "crm_calls")})
    old = {(d, j.file) for d, refs in before.jobs.items() for j in refs}
    out.jobs = {d: [j for j in refs if (d, j.file) not in old] for d, refs in now.jobs.items()}
    return out


def _skipped(key: str, record: DeliveryRecord | None) -> Json:
    if record is None:
        reason = "no delivery record"
    else:
        reason = "the delivery failed verification: " + "; ".join(record.reasons)
    return {"key": key, "status": str(Status.SKIPPED), "error": reason}


def enrich_delivery(
    ports: EnrichPorts,
    settings: EnrichSettings,
    key: str,
    deadline: Deadline,
    dry_run_id: str | None = None,
    break_lock: bool = False,
) -> Json:
    record = load_record(ports.state, key)
    if record is None or not record.complete:
        return _skipped(key, record)
    run = DeliveryRun(ports, settings, record, deadline, dry_run_id)
    lock = RunLock(
        ports.runs, run.state_key, ports.owner, settings.lock_lease, settings.heartbeat, ports.clock
    )
    if not lock.acquire(break_lock):
        return {"key": key, "status": str(Status.BUSY), "error": lock.busy_message(break_lock)}
    lock.start_heartbeat()
    status, error = Status.FAILED, None
    try:
        status = run.walk(lock)
    except QuotaExhaustedError as exc:
        status, error = Status.QUOTA_EXHAUSTED, str(exc)
        ports.metric(metrics.CRM_QUOTA_EXHAUSTED, 1)
        logger.warning("CRM daily quota used up; %s continues on the next run", key)
    except NotConfiguredError as exc:
        status, error = Status.NOT_CONFIGURED, str(exc)
        ports.metric(metrics.DELIVERIES_NOT_CONFIGURED, 1)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report = run.report(status, error)
        put_json(ports.state, StateLayout.report(run.run), report)
        ports.state.put(StateLayout.report(run.run, ".html"), render_html(report), "text/html")
        lock.release()
    if status is Status.COMPLETE and not run.dry:
        _mark_enriched(ports, run, report)
    if status is Status.WAITING:
        ports.metric(metrics.UPLOADS_WAITING, len(report["waiting_batches"]))
    return report


def _mark_enriched(ports: EnrichPorts, run: DeliveryRun, report: Json) -> None:
    marker = {
        "report": StateLayout.report(run.key),
        "at": report["updated_at"],
        "generation": run.generation,
    }
    put_json(ports.state, StateLayout.enriched(run.key), marker)
    ports.metric(metrics.DELIVERIES_ENRICHED, 1)


def reconcile(ports: EnrichPorts, settings: EnrichSettings) -> ReconcileSummary:
    return Reconciler(
        ports.state,
        ports.ledger,
        ports.runs,
        ports.uploads,
        ports.destinations,
        ports.metric,
        settings.max_attempts,
        settings.stuck_after,
        ports.clock,
    ).run()


def _one_delivery(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, key: str, deadline: Deadline
) -> Json:
    """One delivery; an error is recorded (report, metric, summary) and the run goes on."""
    dry_id = request.run_id if request.dry_run else None
    try:
        return enrich_delivery(ports, settings, key, deadline, dry_id, request.break_lock)
    except (FeedsyncError, OSError, ValueError, KeyError, RuntimeError) as exc:
        logger.exception("the run of %s failed; going on with the next delivery", key)
        ports.metric(metrics.DELIVERY_RUNS_FAILED, 1)
        return {"key": key, "status": str(Status.FAILED), "error": f"{type(exc).__name__}: {exc}"}


def run_daily(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, deadline: Deadline
) -> Json:
    if request.dry_run and not request.run_id:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        request = dataclasses.replace(request, run_id=stamp)
    summary: Json = {"request": request.event() | {"continuation": request.continuation}}
    if settings.reconcile and not request.dry_run:
        summary["reconciliation"] = reconcile(ports, settings).to_json()
    crm = ports.crm.prepare(deadline)  # the mirror catches up with Marketo first
    if crm is not None:
        summary["crm"] = crm
    summary["deliveries"] = []
    summary["continued"] = False
    keys, ignored = _allowed(delivery_keys(ports.state, request), settings.report_suites)
    if ignored:
        summary["ignored"] = ignored
        ports.metric(metrics.DELIVERIES_IGNORED, len(ignored))
    for key in keys:
        result = _one_delivery(ports, settings, request, key, deadline)
        summary["deliveries"].append(_brief(result))
        if result["status"] == Status.QUOTA_EXHAUSTED:
            break  # the quota is the CRM's, not the delivery's: the rest waits for tomorrow
        if result["status"] == Status.IN_PROGRESS:
            _continue(ports, settings, request, summary)
            break
    if not summary["continued"]:
        ports.metric(metrics.DAILY_RUNS_COMPLETED, 1)
    _log_run(ports, summary)
    return summary


def _log_run(ports: EnrichPorts, summary: Json) -> None:
    """runs/<time>-<owner>.json: what each invocation did, for ``feedsync status``."""
    now = dt.datetime.fromtimestamp(ports.clock(), dt.UTC)
    summary["finished_at"] = now.isoformat(timespec="seconds")
    key = StateLayout.run_log(now.strftime("%Y%m%dT%H%M%S.%f"), ports.owner)
    put_json(ports.state, key, summary)


def _allowed(keys: list[str], suites: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Deliveries of the allowed report suites, and the others (ignored, counted)."""
    if not suites:
        return keys, []
    allowed = [k for k in keys if _rsid_of(k) in suites]
    return allowed, [k for k in keys if k not in allowed]


def _rsid_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].rsplit("_", 1)[0]


def _brief(result: Json) -> Json:
    out = {k: result.get(k) for k in ("key", "status", "error", *FIGURES)}
    if "this_run" in result:
        out["this_run"] = result["this_run"]
    return out


def _continue(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, summary: Json
) -> None:
    if request.continuation >= settings.max_continuations:
        raise ContinuationLimitError(
            f"still not done after {settings.max_continuations} continuations; "
            "raise MaxContinuations or the function timeout"
        )
    if ports.continue_later is not None:
        ports.continue_later(request.event())
        summary["continued"] = True
