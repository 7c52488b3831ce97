"""The daily run: complete deliveries -> pending visitors -> CRM -> Adobe, idempotently.

For each complete delivery not yet enriched, the sorted pending visitors are cut into fixed
batches (batch i is always the same ids). Per batch: drop visitors in the ledger, look the rest up
in the CRM, map them, write the upload files to the state bucket, send them to every
destination, record the ledger, then mark the batch done. A re-run skips done batches and, for a
batch that was interrupted, skips uploads already recorded and looks for the rest at Adobe
before sending. When the invocation runs short of time it stops between batches and asks for a
continuation; a daily quota stop leaves the rest for the next run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from feedsync.crm.sources import CrmSource
from feedsync.errors import FeedsyncError, QuotaExhaustedError
from feedsync.pipeline.destinations import Batch, Destination
from feedsync.pipeline.ledger import Ledger
from feedsync.pipeline.mapping import MappedRow, Mapping, Rejected
from feedsync.pipeline.parse import pending_visitors
from feedsync.pipeline.runstate import RunState
from feedsync.storage import ObjectStore, get_json, put_json
from feedsync.transport import Deadline

logger = logging.getLogger(__name__)

DRY = "dry-run/"
MAX_REJECT_SAMPLES = 50
LOCK_LEASE = 960.0  # one Lambda invocation (900 s) and a margin
FIGURES = (
    "pending",
    "already_enriched",
    "looked_up",
    "matched",
    "uploaded_rows",
    "rejected",
    "not_found",
)


@dataclass(frozen=True)
class EnrichSettings:
    batch_size: int = 15_000
    first_batch_seconds: float = 120.0  # time kept for a batch before any was measured
    max_continuations: int = 50


@dataclass(frozen=True)
class RunRequest:
    delivery: str | None = None  # "<folder><delivery id>", as under deliveries/ in the state bucket
    date: dt.date | None = None
    dry_run: bool = False
    continuation: int = 0
    run_id: str = ""  # dry runs: one id across continuations, so a new dry run starts afresh

    @classmethod
    def from_event(cls, event: dict[str, Any], dry_run_default: bool = False) -> RunRequest:
        """A scheduled event (``scheduled_time``), a backfill (``delivery`` or ``date``, optional
        ``dry_run``) or a continuation (those plus ``continuation``/``run_id``)."""
        if not isinstance(event, dict):
            raise FeedsyncError("the event must be a JSON object")
        delivery = event.get("delivery") or None
        raw_date = event.get("date") or None
        if delivery and raw_date:
            raise FeedsyncError("name a delivery or a date, not both")
        try:
            day = dt.date.fromisoformat(str(raw_date)) if raw_date else None
        except ValueError:
            raise FeedsyncError(f"date {raw_date!r}: expected YYYY-MM-DD") from None
        dry = event.get("dry_run", dry_run_default)
        if not isinstance(dry, bool):
            raise FeedsyncError(f"dry_run {dry!r}: expected true or false")
        continuation = event.get("continuation", 0)
        if not isinstance(continuation, int) or continuation < 0:
            raise FeedsyncError(f"continuation {continuation!r}: expected a count")
        return cls(
            delivery=str(delivery) if delivery else None,
            date=day,
            dry_run=dry,
            continuation=continuation,
            run_id=str(event.get("run_id") or ""),
        )

    def event(self) -> dict[str, Any]:
        """The event that continues this request in a new invocation."""
        out: dict[str, Any] = {"continuation": self.continuation + 1, "dry_run": self.dry_run}
        if self.dry_run:
            out["run_id"] = self.run_id
        if self.delivery:
            out["delivery"] = self.delivery
        if self.date:
            out["date"] = self.date.isoformat()
        return out


@dataclass
class EnrichPorts:
    state: ObjectStore
    ledger: Ledger
    runs: RunState
    crm: CrmSource
    mapping: Mapping
    destinations: list[Destination]
    continue_later: Callable[[dict[str, Any]], None] | None = None
    metric: Callable[[str, float], None] = lambda name, value: None
    crm_calls: Callable[[], int] = lambda: 0
    owner: str = field(default_factory=lambda: f"local-{time.time_ns()}")


class ContinuationLimitError(FeedsyncError):
    pass


def delivery_keys(state: ObjectStore, request: RunRequest) -> list[str]:
    """Delivery keys this request covers, oldest day first; by default those not yet enriched."""
    keys = [
        k[len("deliveries/") : -len(".json")]
        for k in state.list("deliveries/")
        if k.endswith(".json")
    ]
    if request.delivery:
        wanted = request.delivery.removeprefix("deliveries/").removesuffix(".json")
        if wanted not in keys:
            raise FeedsyncError(
                f"delivery {wanted!r}: no delivery record under deliveries/ in the state bucket"
            )
        return [wanted]
    if request.date:
        day = request.date.isoformat()
        return [k for k in keys if k.rsplit("_", 1)[-1].startswith(day)]
    done = {k[len("enriched/") :] for k in state.list("enriched/")}
    pending = [k for k in keys if k not in done or _redelivered(state, k)]
    return sorted(pending, key=lambda k: (k.rsplit("_", 1)[-1], k))


def generation(record: dict[str, Any]) -> str:
    """Identity of a delivery's content: its data files' digests. A duplicated manifest event
    keeps it; Adobe re-delivering different files changes it."""
    parts = sorted(
        str(f.get("visitors_key")) for f in record.get("files", []) if f.get("kind") == "data"
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _redelivered(state: ObjectStore, key: str) -> bool:
    marker = get_json(state, f"enriched/{key}") or {}
    record = get_json(state, f"deliveries/{key}.json")
    if record is None or not record.get("complete"):
        return False
    return bool(marker.get("generation")) and marker["generation"] != generation(record)


def map_records(
    ids: list[str], found: dict[str, dict[str, Any]], mapping: Mapping
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


def _batches(ids: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(ids, size)):
        yield chunk


class _Run:
    """One delivery's enrichment within one invocation."""

    def __init__(
        self, ports: EnrichPorts, key: str, record: dict[str, Any], dry_run_id: str | None
    ) -> None:
        self.ports = ports
        self.key = key
        self.record = record
        self.dry = dry_run_id is not None
        self.run = f"{DRY}{dry_run_id}/{key}" if dry_run_id is not None else key
        self.generation = generation(record)
        # Checkpoints belong to one content generation: a re-delivery is walked again (the
        # ledger keeps visitors already uploaded from being sent twice).
        self.state_key = f"{self.run}@{self.generation}"
        self.rsid = str(record["rsid"])
        self.day = dt.date.fromisoformat(str(record["day"]))

    def upload_key(self, destination: str, name: str) -> str:
        return f"uploads/{self.run}/{destination}/{name}"

    def batch(self, index: int, ids: list[str]) -> dict[str, Any]:
        ports = self.ports
        calls_before = ports.crm_calls()
        known = ports.ledger.known(self.rsid, ids)
        todo = [v for v in ids if v not in known]
        usable = [v for v in todo if "," not in v]
        rejected = [
            Rejected(v, "visitor id holds ',' (cannot be a CRM filter value)")
            for v in todo
            if "," in v
        ]
        found = ports.crm.lookup(usable) if usable else {}
        rows, bad = map_records(usable, found, ports.mapping)
        rejected.extend(bad)
        batch = Batch(
            self.rsid,
            self.day,
            str(self.record["delivery"]),
            self.state_key,
            index,
            rows,
            ports.mapping,
        )
        jobs: dict[str, list[dict[str, Any]]] = {}
        for destination in ports.destinations:
            files = destination.files(batch) if rows else []
            for name, data in files:
                ports.state.put(self.upload_key(destination.name, name), data, "text/plain")
            if self.dry or not files:
                jobs[destination.name] = [
                    {"file": self.upload_key(destination.name, n), "dry_run": self.dry}
                    for n, _ in files
                ]
                continue
            previous = ports.runs.upload(self.state_key, index, destination.name)
            if previous is not None and previous.get("state") == "sent":
                jobs[destination.name] = previous["jobs"]
                continue
            ports.runs.save_upload(self.state_key, index, destination.name, {"state": "sending"})
            sent = destination.send(batch, files, check_existing=previous is not None)
            ports.runs.save_upload(
                self.state_key, index, destination.name, {"state": "sent", "jobs": sent}
            )
            jobs[destination.name] = sent
        matched = len(found)
        if not self.dry:
            entries = itertools.chain(
                ((r.visitor, "uploaded") for r in rows),
                ((r.visitor, "rejected") for r in rejected),
                ((v, "not_found") for v in usable if v not in found),
            )
            ports.ledger.record(self.rsid, entries, self.key)
        return {
            "pending": len(ids),
            "already_enriched": len(known),
            "looked_up": len(usable),
            "matched": matched,
            "uploaded_rows": len(rows),
            "rejected": len(rejected),
            "not_found": len(usable) - matched,
            "crm_calls": ports.crm_calls() - calls_before,
            "rejected_samples": [
                {"visitor": r.visitor, "reason": r.reason} for r in rejected[:MAX_REJECT_SAMPLES]
            ],
            "rejected_reasons": dict(Counter(r.reason for r in rejected)),
            "jobs": jobs,
        }


def _report(
    run: _Run, done: dict[int, dict[str, Any]], status: str, error: str | None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "delivery": run.record["delivery"],
        "key": run.key,
        "rsid": run.rsid,
        "day": run.day.isoformat(),
        "dry_run": run.dry,
        "generation": run.generation,
        "status": status,
        "error": error,
        "batches_done": len(done),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{
            name: sum(int(b.get(name, 0)) for b in done.values())
            for name in (*FIGURES, "crm_calls")
        },
        "rejected_reasons": dict(
            sum((Counter(b.get("rejected_reasons", {})) for b in done.values()), Counter())
        ),
        "rejected_samples": [s for b in done.values() for s in b.get("rejected_samples", [])][
            :MAX_REJECT_SAMPLES
        ],
        "jobs": {},
    }
    for index in sorted(done):
        for destination, jobs in done[index].get("jobs", {}).items():
            report["jobs"].setdefault(destination, []).extend({**j, "batch": index} for j in jobs)
    return report


def enrich_delivery(
    ports: EnrichPorts,
    settings: EnrichSettings,
    key: str,
    deadline: Deadline,
    dry_run_id: str | None = None,
) -> dict[str, Any]:
    record = get_json(ports.state, f"deliveries/{key}.json")
    if record is None or not record.get("complete"):
        reason = (
            "no delivery record"
            if record is None
            else "the delivery failed verification: " + "; ".join(record.get("reasons", []))
        )
        return {"key": key, "status": "skipped", "error": reason}
    run = _Run(ports, key, record, dry_run_id)
    dry = run.dry

    def lease() -> float:  # to the end of the invocation; renewed every batch for local runs
        return min(max(60.0, deadline.remaining() + 60.0), LOCK_LEASE)

    if not ports.runs.acquire(run.state_key, ports.owner, lease()):
        return {
            "key": key,
            "status": "busy",
            "error": "another invocation is enriching this delivery",
        }
    done = ports.runs.batches(run.state_key)
    status, error = "complete", None
    estimate = settings.first_batch_seconds
    try:
        for index, ids in enumerate(
            _batches(pending_visitors(ports.state, record), settings.batch_size)
        ):
            if index in done:
                continue
            if not deadline.allows(estimate):
                status = "in_progress"
                break
            if not ports.runs.acquire(run.state_key, ports.owner, lease()):
                raise FeedsyncError(f"{key}: lost the run lock to another invocation")
            started = time.monotonic()
            figures = run.batch(index, ids)
            done[index] = figures
            ports.runs.save_batch(run.state_key, index, figures)
            for name in (
                "pending",
                "looked_up",
                "matched",
                "uploaded_rows",
                "rejected",
                "crm_calls",
            ):
                ports.metric(name, figures[name])
            estimate = max(estimate * 0.5, 1.5 * (time.monotonic() - started), 5.0)
    except QuotaExhaustedError as exc:
        status, error = "quota_exhausted", str(exc)
        ports.metric("quota_exhausted", 1)
        logger.warning("CRM daily quota used up; %s continues on the next run", key)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report = _report(run, done, status, error)
        put_json(ports.state, f"reports/{run.run}.json", report)
        ports.runs.release(run.state_key, ports.owner)
    if status == "complete" and not dry:
        put_json(
            ports.state,
            f"enriched/{key}",
            {
                "report": f"reports/{key}.json",
                "at": report["updated_at"],
                "generation": run.generation,
            },
        )
        ports.metric("deliveries_enriched", 1)
    return report


def run_daily(
    ports: EnrichPorts, settings: EnrichSettings, request: RunRequest, deadline: Deadline
) -> dict[str, Any]:
    """Enrich what ``request`` covers; asks for a continuation when time runs short."""
    if request.dry_run and not request.run_id:
        request = dataclasses.replace(
            request, run_id=dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        )
    keys = delivery_keys(ports.state, request)
    summary: dict[str, Any] = {
        "request": request.event() | {"continuation": request.continuation},
        "deliveries": [],
        "continued": False,
    }
    for key in keys:
        dry_id = request.run_id if request.dry_run else None
        report = enrich_delivery(ports, settings, key, deadline, dry_id)
        summary["deliveries"].append(
            {k: report.get(k) for k in ("key", "status", "error", *FIGURES)}
        )
        if report["status"] == "quota_exhausted":
            break
        if report["status"] == "in_progress":
            if request.continuation + 1 > settings.max_continuations:
                raise ContinuationLimitError(
                    f"{key}: still in progress after {settings.max_continuations} continuations; "
                    "raise MaxContinuations or the function timeout"
                )
            if ports.continue_later is not None:
                ports.continue_later(request.event())
                summary["continued"] = True
            break
    return summary
