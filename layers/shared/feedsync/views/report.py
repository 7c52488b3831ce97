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
from feedsync.state.ledger import LedgerEntry, VisitorState
from feedsync.state.ports import Ledger, RunState
from feedsync.state.records import (
    EARLIER,
    FIGURES,
    BatchFigures,
    BatchKind,
    DeliveryRecord,
    FileRecord,
    FileState,
    InFlight,
    Json,
    Status,
    Walk,
    total,
)
from feedsync.storage import ObjectStore

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


@dataclass
class DestinationView:
    counts: Counter[str] = field(default_factory=Counter)
    given_up: list[Json] = field(default_factory=list)
    not_ingested: list[Json] = field(default_factory=list)  # named by Adobe, with its reason
    # per failed file: its visitors the ledger now holds in retry / given up (derived, never
    # stored: two writers cannot disagree about it)
    per_file: dict[str, Counter[str]] = field(default_factory=dict)


def _destination_view(
    state: ObjectStore, ledger: Ledger | None, rsid: str, name: str, files: list[FileRecord]
) -> DestinationView:
    view = DestinationView()
    if ledger is None:  # a dry run: nothing was sent; count what would be
        view.counts["planned"] = sum(f.visitors for f in files)
        return view
    by_file = {record.file: _visitors(state, record.visitors_key) for record in files}
    in_file = dict.fromkeys(v for visitors in by_file.values() for v in visitors)
    failed = {f.file: by_file[f.file] for f in files if f.state is FileState.FAILED}
    entries = ledger.entries(rsid, name, list(in_file))
    stuck = {f.file for f in files if f.state is FileState.STUCK}
    for visitor in in_file:
        entry = entries.get(visitor)
        word = _word(entry, stuck)
        view.counts[word] += 1
        if entry is not None:
            _sample(view, name, visitor, entry, word)
    claims = {f.file: f.claim for f in files}
    for file, visitors in failed.items():
        view.per_file[file] = _moved(entries, visitors, file, claims[file])
    return view


def _sample(view: DestinationView, name: str, visitor: str, entry: LedgerEntry, word: str) -> None:
    """Given-up and not-ingested visitors named in the report, with the reason, a few of each."""
    if entry.state is VisitorState.GIVEN_UP and len(view.given_up) < MAX_GIVEN_UP_SAMPLES:
        reason = entry.reason or "failed at Adobe"
        view.given_up.append({"visitor": visitor, "destination": name, "reason": reason})
    if word == "not_ingested" and len(view.not_ingested) < MAX_GIVEN_UP_SAMPLES:
        view.not_ingested.append({"visitor": visitor, "destination": name,
                                  "reason": entry.reason})  # fmt: skip


def _moved(
    entries: dict[str, LedgerEntry], visitors: list[str], file: str, claim: str
) -> Counter[str]:
    """What became of a failed file's visitors, from the ledger: given up, or released (sent
    again since under another claim, or still to be)."""
    counts: Counter[str] = Counter()
    for visitor in visitors:
        entry = entries.get(visitor)
        if entry is None:
            continue
        if entry.state is VisitorState.GIVEN_UP and entry.file == file:
            counts["given_up"] += 1
        elif entry.claim != claim or entry.state is VisitorState.RETRY:
            counts["released"] += 1
    return counts


def _word(entry: LedgerEntry | None, stuck: set[str]) -> str:
    if entry is None:
        return "expired"  # the ledger forgot it (TTL): sent long ago
    if entry.state is VisitorState.SENT and entry.file in stuck:
        return "stuck"
    if entry.state is VisitorState.REJECTED and entry.file:
        return "not_ingested"  # Adobe took the file but named this row as not ingested
    if entry.state in (VisitorState.NOT_FOUND, VisitorState.REJECTED):
        return "rejected"  # a re-send found the record gone or refused
    return str(entry.state)


def _adobe(files: list[FileRecord], views: dict[str, DestinationView]) -> Json:
    states = Counter(str(f.state) for f in files)
    visitors: Counter[str] = Counter()
    for view in views.values():
        visitors.update(view.counts)
    sent = [f for f in files if f.state is not FileState.BUILT]
    return {
        "files_sent": len(sent),
        "accepted": states["accepted"],
        "failed": states["failed"],
        "stuck": states["stuck"],
        "awaiting_verdict": states["sent"] + states["stuck"],
        "visitors_accepted": visitors["accepted"],
        "visitors_failed": visitors["retry"] + visitors["given_up"],
        "visitors_awaiting_verdict": visitors["sent"] + visitors["stuck"],
        "visitors_awaiting_resend": visitors["retry"],
        "visitors_given_up": visitors["given_up"],
        "visitors_sending": visitors["planned"],
        "rows_skipped_by_adobe": sum(f.skipped_rows for f in files),
        # partial ingestions: visitors Adobe named (rejected with its reason), and rows it did
        # not say which
        "visitors_not_ingested": visitors["not_ingested"],
        "rows_not_ingested_unknown_which": sum(
            max(0, f.skipped_rows - f.not_ingested) for f in files
        ),
    }


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


def _verdicts(files: list[FileRecord], views: dict[str, DestinationView]) -> list[Json]:
    def moved(f: FileRecord) -> Counter[str]:
        view = views.get(f.destination)
        return (view.per_file.get(f.file) if view else None) or Counter()

    return [
        {"destination": f.destination, "file": f.file, "status": f.adobe_status,
         "outcome": str(f.state), "visitors": f.visitors, "detail": f.detail,
         "job": str(f.job.job_id or f.job.idempotency_key or f.job.batch_status or ""),
         "at": f.verdict_at, "released": moved(f)["released"], "given_up": moved(f)["given_up"],
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
        return last
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
    files = inputs.runs.files(inputs.run)
    views = {
        name: _destination_view(inputs.state, inputs.ledger, record.rsid, name, group)
        for name, group in _by_destination(files).items()
    }
    adobe = _adobe(files, views)
    figures = walk.figures if walk else BatchFigures()
    totals: dict[str, Any] = {name: getattr(figures, name) for name in (*FIGURES, "crm_calls")}
    totals["uploaded_rows"] = (
        adobe["visitors_accepted"] + adobe["visitors_awaiting_verdict"]
        if not inputs.dry
        else sum(v.counts["planned"] for v in views.values())
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
        "error": error if status is last else None,
        "outcome": outcome(adobe, inputs.dry),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "batches_done": (walk.next_batch - sum(not b.waiting for b in flying)) if walk else 0,
        **totals,
        "delivery_totals": totals,
        "this_run": this_run,
        "visitors": {name: dict(v.counts) for name, v in views.items()},
        "adobe": adobe,
        "retries": _retry_figures(walk),
        "given_up": [g for v in views.values() for g in v.given_up][:MAX_GIVEN_UP_SAMPLES],
        "not_ingested": [g for v in views.values() for g in v.not_ingested][:MAX_GIVEN_UP_SAMPLES],
        "rejected_reasons": figures.rejected_reasons,
        "rejected_samples": [r.to_json() for r in figures.rejected_samples],
        "earlier": _earlier(figures),
        "jobs": _jobs(files),
        "in_flight": [b.to_json() for b in flying],
        "waiting_batches": [b.id for b in flying if b.waiting],
        "retry_batches": [b.id for b in flying if b.kind is BatchKind.RETRY and not b.waiting],
        "abandoned": list(inputs.abandoned),
        "verdicts": _verdicts(files, views),
        "feed": period_of(snapshot(inputs.state), record.rsid, record.day, record.hour),
        **(extra or {}),
    }
    report["next_steps"] = next_steps(report)
    return report


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


def _by_destination(files: list[FileRecord]) -> dict[str, list[FileRecord]]:
    out: dict[str, list[FileRecord]] = {}
    for f in files:
        out.setdefault(f.destination, []).append(f)
    return out
