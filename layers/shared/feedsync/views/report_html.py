"""The run report as a page a person reads (reports/<run>.html beside the JSON): labels, not
field names; numbers with their units; what to do next when something is wrong."""

from __future__ import annotations

from html import escape
from typing import Any

from feedsync.state.records import Json
from feedsync.views import states
from feedsync.views.report import next_steps

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
    "padding:.3em .6em;text-align:left}td.n{text-align:right}th{background:#f4f4f4}"
    ".bad{color:#b00}.ok{color:#070}.warn{color:#a60}"
    ".banner{background:#fff3c4;border:2px solid #d9a400;padding:.6em 1em;font-weight:bold}"
    ".next{background:#f6f6ff;border-left:4px solid #66c;padding:.4em 1em}"
)


FIGURE_LABELS = (
    ("pending", "visitors without a CRM id in the feed"),
    ("walked", "of them walked by a run so far"),
    ("already_enriched", "of them already handled (sent before, or a recent miss)"),
    ("looked_up", "looked up in the CRM"),
    ("matched", "found in the CRM"),
    ("not_found", "not in the CRM"),
    ("rejected", "rows refused by a rule (not sent)"),
    ("uploaded_rows", "visitors at Adobe (accepted or being processed)"),
    ("crm_calls", "CRM API calls"),
)
THIS_RUN_KEYS = {"looked_up": "looked_up", "matched": "matched", "rejected": "rejected",
                 "uploaded_rows": "rows_sent", "crm_calls": "crm_calls"}  # fmt: skip
VISITOR_LABELS = (
    ("accepted", "accepted by Adobe"),
    ("sent", "sent, awaiting Adobe's verdict"),
    ("stuck", "sent, no verdict for too long (stuck)"),
    ("retry", "failed at Adobe, to be sent again"),
    ("given_up", "failed at Adobe too often: given up"),
    ("planned", "in files built (dry run) or not yet confirmed"),
    ("rejected", "refused when re-sent"),
    ("expired", "sent long ago (the ledger has forgotten them)"),
)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = (
        "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
        or f"<tr><td colspan={len(headers)}>none</td></tr>"
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"<td class=n>{value:,}</td>"
    return f"<td>{value}</td>"


def _job_link(job: Json) -> str:
    """Target's batch status URL opens in a browser; Data Sources and BDIA are named by their
    ids (``feedsync datasources jobs`` / ``bdia`` show them)."""
    if job.get("batch_status"):
        return f'<a href="{escape(str(job["batch_status"]))}">batch status</a>'
    if job.get("job_id") is not None:
        return f"job {escape(str(job['job_id']))}"
    if job.get("idempotency_key"):
        return f"key {escape(str(job['idempotency_key']))}"
    return "dry run: not sent" if job.get("dry_run") else ""


def _feed_line(feed: Json | None) -> str:
    """Adobe's data feed request for this day (feeds/), when the feed is followed."""
    if not feed or not feed.get("adobe"):
        return ""
    adobe, resend = feed["adobe"], feed.get("resend") or {}
    said = escape(f"{adobe.get('adobe_state')} (request {adobe.get('request_id')}, run "
                  f"{adobe.get('run_count')})")  # fmt: skip
    error = " ".join(str(adobe.get(k) or "") for k in ("error_code", "error_msg")).strip()
    asked = f"; resends asked {resend.get('count', 0)} of {resend.get('cap')}" if resend else ""
    return (
        f"<br>Data feed at Adobe: <b>{said}</b>"
        + (f" - {escape(error)}" if error else "")
        + escape(asked)
    )


def render(report: Json) -> bytes:
    state = states.of_report_json(report)
    words, css = f"{state.name} ({state.meaning})", state.severity or "ok"
    dry = bool(report.get("dry_run"))
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>feedsync {'(dry run) ' if dry else ''}{escape(str(report.get('key')))}</title>",
        f"<style>{_STYLE}</style>",
    ]
    if dry:
        parts.append("<p class=banner>DRY RUN - files were built, nothing was sent to Adobe "
                     "and no visitor's state changed.</p>")  # fmt: skip
    parts += [
        f"<h1>{escape(str(report.get('delivery')))}</h1>",
        f"<p>Report suite <b>{escape(str(report.get('rsid')))}</b>, hit day "
        f"<b>{escape(str(report.get('day')))}</b>. State: <b class={css}>{escape(words)}</b>"
        + (f" - {escape(str(report['error']))}" if report.get("error") else "")
        + f".<br>Adobe: <b>{escape(str(report.get('outcome', '')))}</b>."
        + _feed_line(report.get("feed"))
        + f"<br>Updated {escape(str(report.get('updated_at')))} (UTC).</p>",
    ]
    steps = report.get("next_steps") or next_steps(report)
    if steps:
        parts.append("<div class=next><h2>What to do next</h2><ul>"
                     + "".join(f"<li>{escape(s)}</li>" for s in steps) + "</ul></div>")  # fmt: skip
    parts += [
        "<h2>Visitors</h2>",
        _table(["", "delivery", "this run"], _figure_rows(report)),
        "<h2>At Adobe, per destination (distinct visitors)</h2>",
        _table(["", *report.get("visitors", {})], _visitor_rows(report)),
        "<h2>Files</h2>",
        _table(["destination", "batch", "file", "visitors", "job", "Adobe"], _job_rows(report)),
        "<h2>Given up</h2>",
        _table(["visitor", "destination", "reason"], _rows(report.get("given_up", []),
                                                           "visitor", "destination", "reason")),
        "<h2>Rows refused by a rule</h2>",
        _table(["reason", "rows"],
               [[escape(r), n] for r, n in report.get("rejected_reasons", {}).items()]),
        _table(["visitor", "reason"], _rows(report.get("rejected_samples", []),
                                            "visitor", "reason")),
    ]  # fmt: skip
    return "".join(parts).encode("utf-8")


def _rows(items: list[Json], *names: str) -> list[list[Any]]:
    return [[escape(str(item.get(n, ""))) for n in names] for item in items]


DRY_LABELS = {"uploaded_rows": "visitors a real run would send (dry run: nothing was sent)"}


def _figure_rows(report: Json) -> list[list[Any]]:
    this_run = report.get("this_run", {})
    labels = {**dict(FIGURE_LABELS), **(DRY_LABELS if report.get("dry_run") else {})}
    return [
        [escape(labels[name]), report.get(name, 0),
         this_run.get(THIS_RUN_KEYS.get(name, ""), "")]
        for name, _ in FIGURE_LABELS
    ]  # fmt: skip


def _visitor_rows(report: Json) -> list[list[Any]]:
    views = report.get("visitors", {})
    rows = []
    for key, label in VISITOR_LABELS:
        if any(v.get(key) for v in views.values()):
            rows.append([escape(label), *(v.get(key, 0) for v in views.values())])
    return rows


def _job_rows(report: Json) -> list[list[Any]]:
    rows = []
    for destination, jobs in report.get("jobs", {}).items():
        for job in jobs:
            word = str(job.get("state", ""))
            if job.get("adobe_status"):
                word += f" ({job['adobe_status']})"
            rows.append([escape(destination), job.get("batch", ""), escape(str(job.get("file"))),
                         job.get("visitors", ""), _job_link(job), escape(word)])  # fmt: skip
    return rows
