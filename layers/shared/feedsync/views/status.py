"""What an operator asks: the state of each delivery, and what the last runs did.

Read from the same state the functions write (delivery records, per-file results, reports,
enriched markers, run logs, checkpoints); nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from feedsync.daily.select import generation
from feedsync.state.layout import DELIVERIES, DRY_RUNS, REPORTS, RESULTS, RUNS, StateLayout
from feedsync.state.ports import RunState
from feedsync.state.records import DeliveryRecord, Json
from feedsync.storage import ObjectStore, get_json
from feedsync.views import states


@dataclass
class DeliveryStatus:
    key: str
    day: str
    rsid: str
    files: int
    rows: int | None
    pending: int | None
    state: str
    uploads: str = ""
    adobe: Json = field(default_factory=dict)
    matched: int | None = None  # found in the CRM (the walk of the current content)
    rejected: int | None = None  # rows a mapping or destination rule refused (not sent)
    outcome: str = ""  # the report's one phrase for what Adobe holds
    meaning: str = ""  # the state's meaning and next step (views/states.py)
    next_step: str = ""
    has_report: bool = False  # reports/<key>.json exists (else the page explains it inline)
    reasons: list[str] = field(default_factory=list)  # why verification failed

    def to_json(self) -> Json:
        return dict(vars(self))

    def described(self) -> DeliveryStatus:
        state = states.named(self.state)
        self.meaning = state.meaning
        self.next_step = state.next_step.replace("{key}", self.key)
        return self


def _day_rsid(key: str) -> tuple[str, str]:
    name = key.rsplit("/", 1)[-1]
    rsid, _, day = name.rpartition("_")
    return day[:10], rsid


def _enrich_state(record: DeliveryRecord, report: Json | None, marker: Json | None) -> str:
    """The state's name (views/states.py), with the error where a run stopped on one."""
    if report is None or report.get("generation") != generation(record):
        done = marker and marker.get("generation") == generation(record)
        return states.ENRICHED.name if done else states.WAITING_FOR_RUN.name
    state = states.of_report_json(report)
    if state in (states.NOT_CONFIGURED, states.WAITING_FOR_CRM, states.RUN_FAILED):
        return f"{state.name}: {report.get('error') or report.get('status')}"
    return state.name


def _uploads(report: Json | None) -> tuple[str, Json]:
    adobe = (report or {}).get("adobe") or {}
    if not adobe.get("files_sent"):
        return "", adobe
    words = [f"{adobe['files_sent']} files"]
    for name, label in (
        ("visitors_accepted", "accepted"),
        ("visitors_awaiting_verdict", "awaiting verdict"),
        ("visitors_awaiting_resend", "to re-send"),
        ("visitors_given_up", "given up"),
    ):
        if adobe.get(name):
            words.append(f"{adobe[name]:,} {label}")
    return ", ".join(words), adobe


def delivery_status(state: ObjectStore, key: str, suites: tuple[str, ...] = ()) -> DeliveryStatus:
    """A delivery's state; ``suites``: the allow-list (REPORT_SUITES), empty for all."""
    day, rsid = _day_rsid(key)
    data = get_json(state, StateLayout.record(key))
    if data is None:
        files = sum(1 for k in state.list(f"{RESULTS}{key}/") if k.endswith(".json"))
        return DeliveryStatus(key, day, rsid, files, None, None, states.PARSING.name).described()
    record = DeliveryRecord.from_json(data)
    files = len(record.data_files)
    if not record.complete:
        reason = record.reasons[0] if record.reasons else "failed"
        return DeliveryStatus(key, day, rsid, files, record.counts.rows, None,
                              f"{states.FAILED_VERIFICATION.name}: {reason}",
                              reasons=list(record.reasons)).described()  # fmt: skip
    report = get_json(state, StateLayout.report(key))
    marker = get_json(state, StateLayout.enriched(key))
    uploads, adobe = _uploads(report)
    rejected = (report or {}).get("rejected")
    if rejected:  # never only in the report: `feedsync retry KEY --rejected` once fixed
        uploads = ", ".join(w for w in (uploads, f"{rejected:,} rows rejected") if w)
    word = _enrich_state(record, report, marker)
    if suites and rsid not in suites and word != states.ENRICHED.name:
        word = f"{states.IGNORED.name}: {rsid} is not in REPORT_SUITES ({','.join(suites)})"
    return DeliveryStatus(
        key, day, rsid, files, record.counts.rows, record.visitors_pending, word, uploads, adobe,
        (report or {}).get("matched"), rejected, str((report or {}).get("outcome") or ""),
        has_report=report is not None,
    ).described()  # fmt: skip


def _keys(state: ObjectStore, since: str) -> list[str]:
    keys = set(StateLayout.keys_of_records(state.list(DELIVERIES)))
    for result in state.list(RESULTS):  # parsing: per-file results before any record
        keys.add(result[len(RESULTS) :].rsplit("/", 1)[0])
    return sorted((k for k in keys if _day_rsid(k)[0] >= since), key=lambda k: (_day_rsid(k), k))


def newest_day(state: ObjectStore) -> str | None:
    keys = _keys(state, "")
    return max((_day_rsid(k)[0] for k in keys), default=None)


def _run_word(delivery: Json) -> str:
    """A run's word for a delivery, in the states' names: a walk that finished with files
    awaiting Adobe's verdict is waiting for Adobe, not enriched."""
    status = str(delivery.get("status"))
    if status == "skipped":
        return status
    awaiting = int((delivery.get("adobe") or {}).get("awaiting_verdict") or 0)
    return states.of_report(status, awaiting).name


def run_counts(run: Json) -> str:
    """What a run did to its deliveries, in the states' own names (status text and page)."""
    counts = run.get("states") or run["deliveries"]
    words = [f"{n} {word}" for word, n in sorted(counts.items())]
    return ("DRY RUN: " if run.get("dry_run") else "") + (", ".join(words) or "nothing to do")


def recent_runs(state: ObjectStore, limit: int = 5) -> list[Json]:
    logs = sorted(state.list(RUNS), reverse=True)[:limit]
    out = []
    for key in logs:
        summary = get_json(state, key) or {}
        delivered = summary.get("deliveries", [])
        out.append(
            {
                "finished_at": summary.get("finished_at"),
                "request": summary.get("request", {}),
                "deliveries": dict(Counter(str(d.get("status")) for d in delivered)),
                "states": dict(Counter(_run_word(d) for d in delivered)),  # views/states.py
                "continued": summary.get("continued", False),
                "dry_run": bool(summary.get("dry_run")),
                "ignored": len(summary.get("ignored", [])),
                "reconciliation": summary.get("reconciliation"),
            }
        )
    return out


def dry_runs(state: ObjectStore, limit: int = 20) -> list[Json]:
    """The latest dry runs' reports (apart from the real ones): what they would send."""
    prefix = f"{REPORTS}{DRY_RUNS}"
    keys = sorted((k for k in state.list(prefix) if k.endswith(".json")), reverse=True)[:limit]
    out = []
    for key in keys:
        report = get_json(state, key) or {}
        run_id, _, delivery = key[len(prefix) :].removesuffix(".json").partition("/")
        out.append({"run_id": run_id, "key": delivery, "report": key.removesuffix(".json"),
                    "status": report.get("status"), "would_send": report.get("uploaded_rows"),
                    "matched": report.get("matched")})  # fmt: skip
    return out


def status(
    state: ObjectStore, days: int, today: dt.date | None = None, suites: tuple[str, ...] = (),
    last_runs: int = 5,
) -> Json:  # fmt: skip
    since = ((today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=days)).isoformat()
    from feedsync.parse.backfill import latest

    keys = _keys(state, since)
    return {
        "days": days,
        "report_suites": list(suites),
        "deliveries": [delivery_status(state, k, suites).to_json() for k in keys],
        "dry_runs": dry_runs(state),
        "runs": recent_runs(state, last_runs),
        "backfills": list(latest(state)),
        "feeds": _feeds(state),
    }


def _feeds(state: ObjectStore) -> Json | None:
    """The daily run's last look at Adobe's side (feeds/): problems first, then the rest."""
    from feedsync.feeds.health import PROBLEMS as bad
    from feedsync.feeds.snapshot import snapshot

    look = snapshot(state)
    if look is None:
        return None

    def current(row: Json) -> bool:  # not a delivery forgotten since that Adobe does not list
        key = row.get("delivery")
        return bool(row.get("adobe")) or not key or state.exists(StateLayout.record(key))

    rows = [r for s in look.get("suites", {}).values() for r in s.get("rows", []) if current(r)]
    rows.sort(key=lambda r: (r.get("verdict") not in bad, r.get("rsid", ""), r.get("period", "")))
    return {"checked_at": look.get("checked_at"), "rows": rows, "errors": look.get("errors", [])}


def delivery_runs(state: ObjectStore, runs: RunState, key: str) -> Json:
    """One delivery's report, its walk and its files (Adobe's verdicts), for ``runs show``."""
    key = StateLayout.normalise_key(key)
    data = get_json(state, StateLayout.record(key))
    if data is None:
        return {"key": key, "status": delivery_status(state, key).to_json(), "report": None}
    record = DeliveryRecord.from_json(data)
    report = get_json(state, StateLayout.report(key))
    walk = runs.walk(key, generation(record)) if record.complete else None
    return {
        "key": key,
        "status": delivery_status(state, key).to_json(),
        "report": report,
        "walk": walk,
        "in_flight": runs.in_flight(key) if record.complete else [],
        "files": [f.to_json() for f in runs.files(key)] if record.complete else [],
    }


STATUS_PAGE = "reports/index.html"
STATUS_PAGE_DAYS = 14


def write_status_page(
    state: ObjectStore, days: int = STATUS_PAGE_DAYS, suites: tuple[str, ...] = ()
) -> str:
    """reports/index.html: the status page beside the reports it links to (relative links)."""
    from feedsync.views.status_html import relative, render

    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    page = render(status(state, days, suites=suites), relative(STATUS_PAGE), generated)
    state.put(STATUS_PAGE, page, "text/html")
    return STATUS_PAGE
