"""A delivery's report: a view of the stored state, rebuilt whenever that state changes (at the
end of every run of the delivery and after every reconciliation that touched it).

Sources, each the one truth for its part:

- the walk of the current content generation: pending, already enriched, looked up, matched,
  not found, rejected (once per visitor; re-sends are counted apart, under ``retries``);
- the file records of every generation: what was sent, Adobe's status and verdict per file;
- the ledger: what became of each visitor in those files, per destination (sent, accepted,
  awaiting a re-send, given up). Counts are of distinct visitors: a re-sent visitor is counted
  once, in its current state.

A dry run's report reads its own walk and files and no ledger: what a run *would* send.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from feedsync.feeds.snapshot import period_of, snapshot
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import VisitorState
from feedsync.state.ports import Ledger, RunState
from feedsync.state.records import (
    EARLIER,
    FIGURES,
    BatchFigures,
    BatchKind,
    DeliveryRecord,
    FileRecord,
    InFlight,
    Json,
    Status,
    Walk,
    total,
    walk_key,
)
from feedsync.storage import ObjectStore
from feedsync.views import states

MAX_GIVEN_UP_SAMPLES = 50
VISITOR_STATES = ("planned", "sent", "stuck", "accepted", "retry", "given_up")


@dataclass
class ThisRun:
    """What the latest invocation did for the delivery (calls made, files sent)."""

    batches: int = 0
    resumed: int = 0  # batches finished after a crash or a lost upload answer
    retried: int = 0  # re-send batches (visitors Adobe failed)
    files: int = 0
    figures: BatchFigures = field(default_factory=BatchFigures)

    def add(self, figures: BatchFigures) -> None:
        self.figures = total([self.figures, figures])

    def to_json(self) -> Json:
        f = self.figures
        return {
            "batches": self.batches,
            "resumed": self.resumed,
            "retried": self.retried,
            "crm_calls": f.crm_calls,
            "looked_up": f.looked_up,
            "matched": f.matched,
            "rows_sent": f.uploaded_rows,
            "rejected": f.rejected,
            "jobs_created": self.files,
        }


def _visitors(state: ObjectStore, key: str) -> list[str]:
    from feedsync.daily.send import read_visitors

    return read_visitors(state, key)


def _per_destination(tallies: dict[str, dict[str, int]]) -> dict[str, Json]:
    """Visitors by state per destination, from the tallies the runs keep."""
    out: dict[str, Json] = {}
    for name, t in tallies.items():
        destination = name.removeprefix("tally#")
        sent = t.get("visitors_sent", 0)
        decided = t.get("visitors_accepted", 0) + t.get("visitors_failed", 0) + t.get(
            "not_ingested", 0)  # fmt: skip
        stuck = t.get("visitors_stuck", 0)
        out[destination] = {
            "accepted": t.get("visitors_accepted", 0),
            "sent": max(0, sent - decided - stuck),
            "stuck": stuck,
            "retry": t.get("awaiting_resend", 0),
            "given_up": t.get("given_up", 0),
            "not_ingested": t.get("not_ingested", 0),
        }
    return out


def _adobe(tallies: dict[str, dict[str, int]], sending: int) -> Json:
    total: Counter[str] = Counter()
    for t in tallies.values():
        total.update(t)
    visitors: Counter[str] = Counter()
    for counts in _per_destination(tallies).values():
        visitors.update(counts)
    files = total["files_sent"]
    decided = total["files_accepted"] + total["files_failed"]
    return {
        "files_sent": files,
        "accepted": total["files_accepted"],
        "failed": total["files_failed"],
        "stuck": total["files_stuck"],
        "awaiting_verdict": max(0, files - decided),
        "visitors_accepted": visitors["accepted"],
        "visitors_failed": visitors["retry"] + visitors["given_up"],
        "visitors_awaiting_verdict": visitors["sent"] + visitors["stuck"],
        "visitors_awaiting_resend": visitors["retry"],
        "visitors_given_up": visitors["given_up"],
        "visitors_sending": sending,
        "rows_skipped_by_adobe": total["rows_skipped"],
        # partial ingestions: visitors Adobe named (rejected with its reason), and rows it did
        # not say which
        "visitors_not_ingested": visitors["not_ingested"],
        "rows_not_ingested_unknown_which": total["unknown_which"],
    }


def _dry_adobe(files: list[FileRecord]) -> Json:
    """A dry run's figures: what it built (nothing was sent)."""
    return {**_adobe({}, sum(f.visitors for f in files)), "files_sent": 0}


def outcome(adobe: Json, dry: bool) -> str:
    """One phrase for what Adobe has of the delivery now."""
    if dry:
        return "dry run: nothing sent"
    if not adobe["files_sent"]:
        return "nothing to send"
    parts = []
    unknown = adobe.get("rows_not_ingested_unknown_which") or 0
    for key, words in (
        ("visitors_not_ingested", "not ingested by Adobe (named, with its reason)"),
        ("visitors_given_up", "given up"),
        ("visitors_awaiting_resend", "awaiting a re-send"),
        ("visitors_sending", "sending (answer to be found)"),
        ("visitors_awaiting_verdict", "awaiting Adobe's verdict"),
    ):
        if adobe[key]:
            parts.append(f"{adobe[key]:,} {words}")
    if unknown:
        parts.append(f"partially ingested: {unknown:,} rows not ingested, unknown which")
    if not parts:
        return f"accepted by Adobe ({adobe['visitors_accepted']:,} visitors)"
    if adobe["visitors_accepted"]:
        parts.insert(0, f"{adobe['visitors_accepted']:,} accepted")
    return ", ".join(parts)


def _jobs(files: list[FileRecord]) -> dict[str, list[Json]]:
    jobs: dict[str, list[Json]] = {}
    for f in sorted(files, key=lambda f: (f.generation, f.batch, f.file)):
        jobs.setdefault(f.destination, []).append(
            {**f.job.to_json(), "batch": f.batch, "generation": f.generation,
             "visitors": f.visitors, "state": str(f.state), "adobe_status": f.adobe_status}
        )  # fmt: skip
    return jobs


def _verdicts(files: list[FileRecord]) -> list[Json]:
    return [
        {"destination": f.destination, "file": f.file, "status": f.adobe_status,
         "outcome": str(f.state), "visitors": f.visitors, "detail": f.detail,
         "job": str(f.job.job_id or f.job.idempotency_key or f.job.batch_status or ""),
         "at": f.verdict_at, "released": f.released, "given_up": f.given_up,
         "skipped_rows": f.skipped_rows, "not_ingested": f.not_ingested}
        for f in files
        if f.verdict_at
    ]  # fmt: skip


def derive_status(
    last: Status, walk: Walk | None, adobe: Json, dry: bool, flying: list[InFlight]
) -> Status:
    """The delivery's state now: a run that stopped says why; otherwise the state decides."""
    if last not in (Status.COMPLETE, Status.WAITING, Status.AWAITING_RESEND, Status.IN_PROGRESS,
                    Status.GIVEN_UP):  # fmt: skip
        return last  # (a sharded delivery says so until its shards are done)
    if walk is None or not walk.done or walk.catchup is not None:
        return Status.IN_PROGRESS
    if any(not b.waiting for b in flying) and last is Status.IN_PROGRESS:
        return Status.IN_PROGRESS
    if flying or (adobe["visitors_sending"] and not dry):
        return Status.WAITING
    if adobe["visitors_awaiting_resend"]:
        return Status.AWAITING_RESEND
    if adobe["visitors_awaiting_verdict"]:
        return Status.COMPLETE
    if adobe["visitors_given_up"]:
        return Status.GIVEN_UP  # nothing will reach Adobe without an operator (feedsync retry)
    return Status.COMPLETE


@dataclass
class ReportInputs:
    state: ObjectStore
    runs: RunState
    ledger: Ledger | None  # None: a dry run (no ledger)
    record: DeliveryRecord
    run: str  # run key
    generation: str
    dry: bool
    abandoned: list[str] = field(default_factory=list)  # in-flight work nobody can finish now


def build_report(
    inputs: ReportInputs,
    last: Status,
    error: str | None,
    this_run: Json,
    extra: Json | None = None,
) -> Json:
    record = inputs.record
    data = inputs.runs.walk(inputs.run, inputs.generation)
    walk = Walk.from_json(data) if data else None
    flying = [InFlight.from_json(d) for d in inputs.runs.in_flight(inputs.run)]
    tallies = inputs.runs.counters(inputs.run, "tally#")
    files = inputs.runs.files(inputs.run, LISTED_FILES)  # a bounded listing: the tallies count
    if inputs.dry:  # nothing was sent: what would be
        built = sum(t.get("visitors_sent", 0) for t in tallies.values())
        adobe = {**_adobe({}, built), "files_sent": 0}
        per_destination = {n.removeprefix("tally#"): {"planned": t.get("visitors_sent", 0)}
                           for n, t in tallies.items()}  # fmt: skip
    else:
        adobe = _adobe(tallies, _sending(inputs, flying))
        per_destination = _per_destination(tallies)
    figures = _figures(inputs, walk)
    totals: dict[str, Any] = {name: getattr(figures, name) for name in (*FIGURES, "crm_calls")}
    # the delivery's visitors without a CRM id, whether or not a run has walked them yet (a run
    # that stopped at its first call still reports the day's size); ``walked``: how far it got
    totals["walked"] = figures.pending
    if record.visitors_pending is not None:
        totals["pending"] = max(record.visitors_pending, figures.pending)
    totals["uploaded_rows"] = (
        adobe["visitors_accepted"] + adobe["visitors_awaiting_verdict"]
        if not inputs.dry
        else adobe["visitors_sending"]
    )
    status = derive_status(last, walk, adobe, inputs.dry, flying)
    report: Json = {
        "delivery": record.delivery,
        "key": record.key,
        "rsid": record.rsid,
        "day": record.day,
        "dry_run": inputs.dry,
        "generation": inputs.generation,
        "status": str(status),
        "state": states.of_report(str(status), adobe["visitors_awaiting_verdict"]).name,
        "error": error if status is last else None,
        "outcome": outcome(adobe, inputs.dry),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "batches_done": (walk.next_batch - sum(not b.waiting for b in flying)) if walk else 0,
        **totals,
        "delivery_totals": totals,
        "this_run": this_run,
        "visitors": per_destination,
        "adobe": adobe,
        "retries": _retry_figures(walk),
        "given_up": _samples(inputs, files, "given_up"),
        "not_ingested": _samples(inputs, files, "not_ingested"),
        "rejected_reasons": figures.rejected_reasons,
        "rejected_samples": [r.to_json() for r in figures.rejected_samples],
        "earlier": _earlier(figures),
        "jobs": _jobs(files),
        "in_flight": [b.to_json() for b in flying],
        "waiting_batches": [b.id for b in flying if b.waiting],
        "retry_batches": [b.id for b in flying if b.kind is BatchKind.RETRY and not b.waiting],
        "abandoned": list(inputs.abandoned),
        "verdicts": _verdicts(files),
        "files_listed": f"{len(files)} of {adobe['files_sent']} (feedsync runs show lists all)"
        if len(files) >= LISTED_FILES
        else "all",
        "feed": period_of(snapshot(inputs.state), record.rsid, record.day, record.hour),
        **(extra or {}),
    }
    report["next_steps"] = next_steps(report)
    return report


LISTED_FILES = 200  # files a report lists with their jobs and verdicts (the tallies count all)


def _figures(inputs: ReportInputs, walk: Walk | None) -> BatchFigures:
    """The walk's figures; a sharded walk's are its shards' (one read per shard)."""
    if walk is None:
        return BatchFigures()
    if not walk.shards:
        return walk.figures
    parts = []
    for n in range(len(walk.shards)):
        data = inputs.runs.walk(inputs.run, walk_key(inputs.generation, n))
        if data:
            parts.append(Walk.from_json(data).figures)
    return total(parts)


def _sending(inputs: ReportInputs, flying: list[InFlight]) -> int:
    """Visitors claimed whose file Adobe has not confirmed taking (a waiting batch's files)."""
    from feedsync.daily.send import Plan

    count = 0
    for batch in flying:
        if not batch.waiting:
            continue
        for destination in batch.destinations:
            data = inputs.runs.plan(inputs.run, batch.walk, batch.number, destination)
            if data is not None:
                plan = Plan.from_json(data)
                taken = {j.file for j in plan.jobs}
                count += sum(f.visitors for f in plan.files if f.name not in taken)
    return count


def _samples(inputs: ReportInputs, files: list[FileRecord], kind: str) -> list[Json]:
    """A few given-up (or not ingested) visitors with Adobe's reason: read from the ledger for
    the files that have some (the rare path), at most MAX_GIVEN_UP_SAMPLES."""
    if inputs.ledger is None:
        return []
    out: list[Json] = []
    wanted = VisitorState.GIVEN_UP if kind == "given_up" else VisitorState.REJECTED
    for record in files:
        if len(out) >= MAX_GIVEN_UP_SAMPLES or not getattr(record, kind):
            continue
        visitors = _visitors(inputs.state, record.visitors_key)
        entries = inputs.ledger.entries(inputs.record.rsid, record.destination, visitors)
        for visitor, entry in entries.items():
            if entry.state is wanted and entry.claim == record.claim and entry.file == record.file:
                reason = entry.reason or "failed at Adobe"
                out.append({"visitor": visitor, "destination": record.destination,
                            "reason": reason})  # fmt: skip
    return out[:MAX_GIVEN_UP_SAMPLES]


EARLIER_WORDS = {
    "accepted": "already accepted by Adobe",
    "in_flight": "already on their way to Adobe (another day's files)",
    "given_up": "given up earlier (feedsync retry KEY --given-up sends them again)",
    "not_found": "not in the CRM earlier (looked up again once LedgerMissTtlDays pass)",
    "rejected": "rejected earlier (looked up again once LedgerMissTtlDays pass)",
}


def _earlier(figures: BatchFigures) -> Json:
    """``already_enriched`` told apart: what the ledger said of each visitor."""
    return {name: figures.earlier.get(name, 0) for name in EARLIER}


def next_steps(report: Json) -> list[str]:
    """What a person should do about each thing wrong with the delivery."""
    steps = []
    status, adobe, key = str(report.get("status")), report.get("adobe") or {}, report.get("key")
    if status == "not_configured":
        steps.append(f"Configure what is missing: {report.get('error')}. The next run goes on.")
    if status == "failed":
        steps.append(
            "The run of this delivery failed (the error above); the other deliveries went on. "
            "The next daily run tries it again; if the error stays, fix its cause and run "
            f"`feedsync run-daily --delivery {key}` (done batches are skipped)."
        )
    if status == "quota_exhausted":
        steps.append("Nothing: the next daily run continues where this one stopped.")
    if status == "interrupted":
        steps.append(f"Run it again: `feedsync run-daily --delivery {key}` resumes where it "
                     "stopped (nothing was lost).")  # fmt: skip
    if status == "waiting_for_crm":
        steps.append(f"{report.get('crm_wait') or report.get('error')}.")
    if adobe.get("visitors_given_up"):
        steps.append(
            "Read Adobe's reason under 'Given up'; fix its cause (data source settings, file "
            f"rules), then `feedsync retry {key} --given-up`: the next run sends them again."
        )
    if adobe.get("stuck"):
        steps.append("Ask Adobe Client Care about the stuck job ids below; runs keep asking.")
    if adobe.get("visitors_not_ingested"):
        steps.append(
            "Adobe took files but did not ingest some visitors: 'Not ingested' names them with "
            f"Adobe's reason; fix the cause, then `feedsync retry {key} --rejected`."
        )
    if adobe.get("rows_not_ingested_unknown_which"):
        steps.append(
            "Adobe took files but did not ingest some rows without saying which (the files' "
            "verdicts below give Adobe's counts and log): read them at Adobe."
        )
    steps.extend(
        f"{line}; or `feedsync forget {key}` to start over" for line in report.get("abandoned", [])
    )
    return steps


def write_report(state: ObjectStore, run: str, report: Json) -> None:
    """reports/<run>.json and the page beside it."""
    from feedsync.storage import put_json
    from feedsync.views.report_html import render

    put_json(state, StateLayout.report(run), report)
    state.put(StateLayout.report(run, ".html"), render(report), "text/html")


def _retry_figures(walk: Walk | None) -> Json:
    if walk is None:
        return {}
    f = walk.retries
    return {"looked_up": f.looked_up, "matched": f.matched, "resent": f.uploaded_rows,
            "not_found": f.not_found, "rejected": f.rejected}  # fmt: skip
