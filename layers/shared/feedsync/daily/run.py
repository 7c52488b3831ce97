"""The daily run: complete deliveries -> pending visitors -> CRM -> Adobe, exactly once.

First, reconciliation reads Adobe's verdict on every file not yet final and moves its visitors
in the ledger (a failure releases them for a re-send and opens their delivery again); the
reports it touched are rebuilt. Then the CRM gets ready (the mirror syncs), and each delivery
to work on (``select``), oldest first, is run (``delivery``): walk, finish, re-send. When the
invocation runs short of time the run stops between batches and asks for a continuation; a
daily CRM quota stop leaves the rest for the next run; an error in one delivery is recorded in
its report and the run goes on with the next one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from feedsync import metrics
from feedsync.crm.sources import CrmSource
from feedsync.daily.delivery import DeliveryRun
from feedsync.daily.destinations import Destination
from feedsync.daily.lock import RunLock
from feedsync.daily.mapping import Mapping
from feedsync.daily.reconcile import Reconciler, ReconcileSummary
from feedsync.daily.select import delivery_keys, generation
from feedsync.daily.shards import ShardRunner
from feedsync.deadline import Deadline
from feedsync.errors import FeedsyncError, NotConfiguredError, QuotaExhaustedError
from feedsync.feeds.snapshot import write_snapshot
from feedsync.feeds.watch import FeedWatch
from feedsync.parse.results import load_record
from feedsync.settings import EnrichSettings, RunRequest
from feedsync.state import todo
from feedsync.state.layout import StateLayout
from feedsync.state.ports import Ledger, Metric, RunState, UploadLog
from feedsync.state.records import FIGURES, DeliveryRecord, Json, Status
from feedsync.storage import ObjectStore, get_json, put_json
from feedsync.views.report import ReportInputs, build_report, write_report

logger = logging.getLogger(__name__)


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
    feeds: FeedWatch | None = None  # Adobe's side of each data feed (DATA_FEED_IDS)
    shards: ShardRunner | None = None  # who runs a large delivery's shards (daily/shards.py)
    clock: Callable[[], float] = time.time  # wall clock (leases, settle and stuck ages)
    # a destination no longer configured, built to read Adobe's verdicts on its files
    follower: Callable[[str], Destination | None] = lambda name: None

    def for_suite(self, rsid: str) -> tuple[Mapping, CrmSource]:
        return self.suite(rsid) if self.suite is not None else (self.mapping, self.crm)


class ContinuationLimitError(FeedsyncError):
    pass


def _skip(ports: EnrichPorts, key: str, record: DeliveryRecord | None) -> Json:
    """A delivery that cannot be enriched: said once, then left until its record changes (a
    re-delivery) or an operator forgets it (``feedsync forget``)."""
    if record is None:
        reason = "no delivery record"
    else:
        reason = "the delivery failed verification: " + "; ".join(record.reasons)
        marker = {"skipped": reason, "closed_at": record.closed_at, "generation": None}
        put_json(ports.state, StateLayout.enriched(key), marker)
        todo.done(ports.state, key, record.closed_at)  # said once; a re-delivery indexes it again
        ports.metric(metrics.DELIVERIES_SKIPPED, 1)
    return {"key": key, "status": str(Status.SKIPPED), "error": reason}


def _publish(ports: EnrichPorts, run: DeliveryRun, status: Status, error: str | None) -> Json:
    extra: Json = {}
    if status is Status.WAITING_FOR_CRM:
        extra["crm_wait"] = error
    report = build_report(run.inputs(), status, error, run.this_run.to_json(), extra)
    write_report(ports.state, run.run, report)
    return report


def enrich_delivery(
    ports: EnrichPorts,
    settings: EnrichSettings,
    key: str,
    deadline: Deadline,
    dry_run_id: str | None = None,
    break_lock: bool = False,
    shard: int | None = None,
) -> Json:
    record = load_record(ports.state, key)
    if record is None or not record.complete:
        return _skip(ports, key, record)
    run = DeliveryRun(ports, settings, record, deadline, dry_run_id, shard)
    held = run.run if shard is None else f"{run.run}#s{shard}"  # a shard has a lock of its own
    lock = RunLock(
        ports.runs, held, ports.owner, settings.lock_lease, settings.heartbeat, ports.clock
    )
    if not lock.acquire(break_lock):
        return {"key": key, "status": str(Status.BUSY), "error": lock.busy_message(break_lock)}
    lock.start_heartbeat()
    status, error = Status.FAILED, None
    try:
        stale = run.crm_staleness()
        if stale is not None:
            status, error = Status.WAITING_FOR_CRM, stale
            ports.metric(metrics.DELIVERIES_WAITING_FOR_CRM, 1)
            logger.warning("%s waits for the CRM: %s", key, stale)
        else:
            status = run.work(lock)
    except QuotaExhaustedError as exc:
        status, error = Status.QUOTA_EXHAUSTED, str(exc)
        ports.metric(metrics.CRM_QUOTA_EXHAUSTED, 1)
        logger.warning("CRM daily quota used up; %s continues on the next run", key)
    except NotConfiguredError as exc:
        status, error = Status.NOT_CONFIGURED, str(exc)
        ports.metric(metrics.DELIVERIES_NOT_CONFIGURED, 1)
    except KeyboardInterrupt:  # the operator's Ctrl-C: what was done is kept, the rest resumes
        status, error = Status.INTERRUPTED, INTERRUPTED
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            # a shard's run leaves the delivery's report to the delivery's own run
            report = (_publish(ports, run, status, error) if shard is None else
                      {"key": key, "shard": shard, "status": str(status), "error": error,
                       "waiting_batches": []})  # fmt: skip
        finally:
            lock.release()
    if shard is None and report["status"] in (Status.COMPLETE, Status.GIVEN_UP) and not run.dry:
        _mark_enriched(ports, run, report)
    if report["waiting_batches"]:
        ports.metric(metrics.UPLOADS_WAITING, len(report["waiting_batches"]))
    return report


INTERRUPTED = "interrupted (Ctrl-C); nothing lost; run it again to resume"


def _mark_enriched(ports: EnrichPorts, run: DeliveryRun, report: Json) -> None:
    marker = {
        "report": StateLayout.report(run.key),
        "at": report["updated_at"],
        "generation": run.generation,
        "closed_at": run.record.closed_at,
    }
    put_json(ports.state, StateLayout.enriched(run.key), marker)
    todo.done(ports.state, run.key, run.record.closed_at)
    ports.metric(metrics.DELIVERIES_ENRICHED, 1)


def refresh_report(ports: EnrichPorts, key: str) -> Json | None:
    """Rebuild a delivery's report from the state now (after reconciliation moved it)."""
    record = load_record(ports.state, key)
    if record is None or not record.complete:
        return None
    before = get_json(ports.state, StateLayout.report(key)) or {}
    last = Status(before.get("status") or Status.COMPLETE)
    inputs = ReportInputs(ports.state, ports.runs, ports.ledger, record, key, generation(record),
                          False)  # fmt: skip
    report = build_report(inputs, last, before.get("error"), before.get("this_run") or {})
    write_report(ports.state, key, report)
    return report


def reconcile(
    ports: EnrichPorts, settings: EnrichSettings, running: Callable[[], set[str]] | None = None
) -> ReconcileSummary:
    """Adobe's verdicts; then the reports of the deliveries they touched are rebuilt - but
    those this invocation runs next (``running``), whose run rebuilds them anyway."""
    summary = Reconciler(
        ports.state,
        ports.ledger,
        ports.runs,
        ports.uploads,
        ports.destinations,
        ports.metric,
        settings.max_attempts,
        settings.stuck_after,
        ports.clock,
        ports.owner,
        settings.lock_lease,
        ports.follower,
    ).run()
    if summary.skipped:
        logger.info("reconciliation skipped: %s", summary.skipped)
    later = running() if running is not None and summary.touched else set()
    for key in sorted(summary.touched - later):
        try:
            refresh_report(ports, key)
        except (FeedsyncError, OSError, ValueError, KeyError) as exc:
            summary.errors.append(f"{key}: the report could not be rebuilt: {exc}")
    return summary


def _one_delivery(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, key: str, deadline: Deadline
) -> Json:
    """One delivery; an error is recorded (report, metric, summary) and the run goes on."""
    dry_id = request.run_id if request.dry_run else None
    try:
        return enrich_delivery(ports, settings, key, deadline, dry_id, request.break_lock,
                               request.shard)  # fmt: skip
    except Exception as exc:  # any error of one delivery (an AWS error too) stays in it
        logger.exception(
            "the run of %s failed (%s: %s); going on with the next delivery",
            key, type(exc).__name__, exc,
        )  # fmt: skip
        ports.metric(metrics.DELIVERY_RUNS_FAILED, 1)
        return {"key": key, "status": str(Status.FAILED), "error": f"{type(exc).__name__}: {exc}"}


def run_daily(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, deadline: Deadline
) -> Json:
    if request.dry_run and not request.run_id:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        request = dataclasses.replace(request, run_id=stamp)
    summary: Json = {"request": request.event() | {"continuation": request.continuation}}
    summary["dry_run"] = request.dry_run
    if request.shard is not None and request.delivery:  # a shard's run: its range alone
        result = _one_delivery(ports, settings, request, request.delivery, deadline)
        return {**summary, "deliveries": [_brief(result)], "shard": request.shard,
                "shard_status": result["status"], "continued": False}  # fmt: skip
    _before_deliveries(ports, settings, request, summary)
    keys, ignored = _allowed(delivery_keys(ports.state, request), settings.report_suites)
    # the mirror catches up with Marketo first: once a day, or when a delivery needs more
    crm = ports.crm.prepare(deadline, _needed(ports, keys))
    if crm is not None:
        summary["crm"] = crm
    summary["deliveries"] = []
    summary["continued"] = False
    if ignored:
        summary["ignored"] = ignored
        summary["ignored_warning"] = ignored_warning(settings.report_suites, keys, ignored)
        logger.warning(summary["ignored_warning"])
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
    if _worth_logging(summary):
        _log_run(ports, summary)
        _status_page(ports, settings, summary)
    return summary


def _before_deliveries(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, summary: Json
) -> None:
    """Adobe's verdicts, then Adobe's side of the feeds (a real run's, not a dry run's)."""
    if request.dry_run:
        return
    if settings.reconcile:

        def running() -> set[str]:
            return set(_allowed(delivery_keys(ports.state, request), settings.report_suites)[0])

        summary["reconciliation"] = reconcile(ports, settings, running).to_json()
    if ports.feeds is not None:
        summary["feeds"] = watch_feeds(ports)


def _needed(ports: EnrichPorts, keys: list[str]) -> dt.datetime | None:
    """How current the CRM copy must be for the deliveries this run works on."""
    from feedsync.daily.delivery import as_of

    moments = [as_of(r) for k in keys if (r := load_record(ports.state, k)) and r.complete]
    return max(moments, default=None)


def watch_feeds(ports: EnrichPorts) -> Json:
    """Adobe's side of each feed, before the deliveries (a resend asked today arrives as a
    re-delivery, run by a later invocation). Under a lock: two invocations never both decide
    to resend; Adobe unreachable is recorded and the run goes on."""
    assert ports.feeds is not None
    lock_key = "feeds/health"
    if not ports.runs.acquire(lock_key, ports.owner, 300.0):
        return {"skipped": "another invocation is checking the feeds"}
    try:
        now = dt.datetime.fromtimestamp(ports.clock(), dt.UTC)
        look = ports.feeds.look(now)
        write_snapshot(ports.state, look)
    except (FeedsyncError, OSError, ValueError) as exc:
        logger.warning("feed health could not be checked: %s", exc)
        return {"errors": [str(exc)]}
    finally:
        ports.runs.release(lock_key, ports.owner)
    return {
        "problems": sum(s["problems"] for s in look["suites"].values()),
        "resends_asked": {
            r: s["resends_asked"] for r, s in look["suites"].items() if s["resends_asked"]
        },
        "errors": look["errors"],
    }


def _status_page(ports: EnrichPorts, settings: EnrichSettings, summary: Json) -> None:
    """The morning check's page; a failure to write it is logged, never fails the run."""
    from feedsync.views.status import write_status_page

    try:
        summary["status_page"] = ports.state.describe(
            write_status_page(ports.state, suites=settings.report_suites)
        )
    except Exception as exc:  # a view: it never fails the run that did the work
        logger.warning("the status page could not be written: %s", exc)


def _worth_logging(summary: Json) -> bool:
    """Runs that did something: a delivery, a verdict, a mirror sync (not every no-op)."""
    rec = summary.get("reconciliation") or {}
    feeds = summary.get("feeds") or {}
    acted = feeds.get("problems") or feeds.get("resends_asked") or feeds.get("errors")
    return bool(summary["deliveries"] or rec.get("checked") or summary.get("crm") or acted)


def _log_run(ports: EnrichPorts, summary: Json) -> None:
    """runs/<time>-<owner>.json: what each invocation did, for ``feedsync status``."""
    now = dt.datetime.fromtimestamp(ports.clock(), dt.UTC)
    summary["finished_at"] = now.isoformat(timespec="seconds")
    key = StateLayout.run_log(now.strftime("%Y%m%dT%H%M%S.%f"), ports.owner)
    put_json(ports.state, key, summary)


def ignored_warning(suites: tuple[str, ...], allowed: list[str], ignored: list[str]) -> str:
    """One line: what the allow-list leaves out (never a silent stop)."""
    others = sorted({_rsid_of(k) for k in ignored})
    listed = ",".join(suites)
    if not allowed:
        return (f"REPORT_SUITES={listed} names none of the {len(ignored)} deliveries with work "
                f"(their suites: {', '.join(others)}): check its spelling")  # fmt: skip
    return (f"REPORT_SUITES={listed} leaves out {len(ignored)} deliveries with work of "
            f"{', '.join(others)}: add them to ReportSuites to enrich them")  # fmt: skip


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
    for name in ("this_run", "outcome", "dry_run", "adobe"):
        if name in result:
            out[name] = result[name]
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
