"""The run report as a small HTML page (reports/<run>.html beside the JSON), for a browser."""

from __future__ import annotations

from html import escape
from typing import Any

from feedsync.state.records import FIGURES, Json

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left}th{background:#f4f4f4}.bad{color:#b00}.ok{color:#070}"
)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _job_link(job: Json) -> str:
    """Where a person finds the job: Target's batch status URL opens in a browser; Data Sources
    and BDIA are named by their ids (feedsync datasources jobs / bdia shows them)."""
    if job.get("batch_status"):
        url = escape(str(job["batch_status"]))
        return f'<a href="{url}">batch status</a>'
    if job.get("job_id") is not None:
        return f"job {escape(str(job['job_id']))}"
    if job.get("idempotency_key"):
        return f"key {escape(str(job['idempotency_key']))}"
    return "dry run" if job.get("dry_run") else ""


def _verdicts(report: Json) -> dict[str, Json]:
    return {str(v.get("file")): v for v in report.get("verdicts", [])}


def render(report: Json) -> bytes:
    status = str(report.get("status"))
    css = "ok" if status == "complete" else "bad"
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>feedsync {escape(str(report.get('key')))}</title>",
        f"<style>{_STYLE}</style><h1>{escape(str(report.get('delivery')))}</h1>",
        f"<p>report suite {escape(str(report.get('rsid')))}, day {escape(str(report.get('day')))}"
        f", status <b class={css}>{escape(status)}</b>"
        + (f" - {escape(str(report['error']))}" if report.get("error") else "")
        + f"; updated {escape(str(report.get('updated_at')))}</p>",
        "<h2>Figures</h2>",
        _table(["", "delivery totals", "this run"], _figure_rows(report)),
        "<h2>Adobe</h2>",
        _table(list(report.get("adobe", {})), [list(report.get("adobe", {}).values())]),
        "<h2>Jobs</h2>",
        _table(
            ["destination", "batch", "file", "rows", "job", "Adobe's verdict"], _job_rows(report)
        ),
        "<h2>Rejected rows</h2>",
        _table(
            ["reason", "rows"],
            [[escape(r), n] for r, n in report.get("rejected_reasons", {}).items()],
        ),
        _table(
            ["visitor", "reason"],
            [
                [escape(s["visitor"]), escape(s["reason"])]
                for s in report.get("rejected_samples", [])
            ],
        ),
    ]
    return "".join(parts).encode("utf-8")


def _figure_rows(report: Json) -> list[list[Any]]:
    this_run = report.get("this_run", {})
    names = {"uploaded_rows": "rows_sent", "crm_calls": "crm_calls", "looked_up": "looked_up",
             "matched": "matched", "rejected": "rejected"}  # fmt: skip
    return [
        [name, report.get(name, ""), this_run.get(names.get(name, ""), "")]
        for name in (*FIGURES, "crm_calls")
    ]


def _job_rows(report: Json) -> list[list[Any]]:
    verdicts = _verdicts(report)
    rows = []
    for destination, jobs in report.get("jobs", {}).items():
        for job in jobs:
            verdict = verdicts.get(str(job.get("file")), {})
            word = verdict.get("outcome", "awaiting verdict" if not job.get("dry_run") else "")
            rows.append([escape(destination), job.get("batch", ""), escape(str(job.get("file"))),
                         job.get("rows", ""), _job_link(job),
                         escape(f"{word} ({verdict['status']})" if verdict else word)])  # fmt: skip
    return rows
