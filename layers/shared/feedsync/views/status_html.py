"""The morning check as a page: every delivery of the last days, failures first, its figures
and Adobe's latest word, each linking to its report; dry runs apart and marked; the last runs.

The daily run keeps it at ``reports/index.html`` with links relative to it (the reports sit
beside it); ``feedsync status --html FILE`` and ``--open`` write it with pre-signed links.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from feedsync.state.records import Json
from feedsync.views.report_html import STATUS_WORDS

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
    "padding:.3em .6em;text-align:left}td.n{text-align:right}th{background:#f4f4f4}"
    "tr.bad td{background:#fde8e8}tr.warn td{background:#fff6dd}.dry{color:#a60}"
)
# the order a person reads them in: what needs them first
ORDER = ("failed", "run failed", "not configured", "waiting for the CRM", "awaiting re-send",
         "waiting for Adobe", "waiting for quota", "partially enriched", "parsing", "complete",
         "enriched")  # fmt: skip
Link = Callable[[str], str]  # report key (reports/<run>) -> href


def _rank(state: str) -> int:
    return next((n for n, word in enumerate(ORDER) if state.startswith(word)), len(ORDER))


def _css(state: str) -> str:
    rank = _rank(state)
    return "bad" if rank < 3 else "warn" if rank < 8 else ""


def _n(value: Any) -> str:
    return f"<td class=n>{value:,}</td>" if isinstance(value, int) else f"<td>{value or '-'}</td>"


def _delivery_rows(deliveries: list[Json], link: Link) -> str:
    rows = []
    for d in sorted(deliveries, key=lambda d: (_rank(str(d["state"])), d["day"], d["key"])):
        report = f'<a href="{escape(link("reports/" + d["key"]))}">{escape(d["key"])}</a>'
        rows.append(
            f"<tr class={_css(str(d['state']))}><td>{escape(d['day'])}</td>"
            f"<td>{escape(d['rsid'])}</td><td>{escape(str(d['state']))}</td>"
            f"{_n(d['rows'])}{_n(d['pending'])}{_n(d.get('matched'))}"
            f"<td>{escape(str(d.get('outcome') or d.get('uploads') or ''))}</td>"
            f"<td>{report}</td></tr>"
        )
    return "".join(rows) or "<tr><td colspan=8>no delivery in these days</td></tr>"


def _dry_rows(dry: list[Json], link: Link) -> str:
    return "".join(
        f"<tr><td class=dry>DRY RUN {escape(r['run_id'])}</td><td>{escape(r['key'])}</td>"
        f"<td>{escape(str(r['status']))}</td>{_n(r.get('matched'))}{_n(r.get('would_send'))}"
        f'<td><a href="{escape(link(r["report"]))}">report</a></td></tr>'
        for r in dry
    )


def _run_rows(runs: list[Json]) -> str:
    rows = []
    for run in runs:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(run["deliveries"].items()))
        rec = run.get("reconciliation") or {}
        verdicts = (
            f"{rec.get('accepted', 0)} accepted, {rec.get('failed', 0)} failed" if rec else ""
        )
        rows.append(
            f"<tr><td>{escape(str(run['finished_at']))}</td>"
            f"<td>{escape(counts or 'nothing to do')}</td><td>{escape(verdicts)}</td></tr>"
        )
    return "".join(rows) or "<tr><td colspan=3>no daily run yet</td></tr>"


def render(found: Json, link: Link, generated: str) -> bytes:
    days = found.get("days", "")
    bad = sum(1 for d in found["deliveries"] if _rank(str(d["state"])) < 3)
    head = f"<b class=bad>{bad} need a look</b>" if bad else "nothing needs a look"
    parts = [
        "<!doctype html><meta charset=utf-8><title>feedsync status</title>",
        f"<style>{_STYLE}</style><h1>feedsync status</h1>",
        f"<p>Deliveries of the last {escape(str(days))} days, what needs a person first: "
        f"{head}. Generated {escape(generated)} (UTC).</p>",
        "<table><tr><th>day</th><th>report suite</th><th>state</th><th>hits</th>"
        "<th>pending visitors</th><th>found in the CRM</th><th>Adobe</th><th>report</th></tr>",
        _delivery_rows(found["deliveries"], link),
        "</table><h2>Dry runs (nothing sent)</h2><table><tr><th>run</th><th>delivery</th>"
        "<th>state</th><th>found in the CRM</th><th>would send</th><th></th></tr>",
        _dry_rows(found.get("dry_runs", []), link) or "<tr><td colspan=6>none</td></tr>",
        "</table><h2>Last runs</h2><table><tr><th>finished</th><th>deliveries</th>"
        "<th>Adobe's verdicts read</th></tr>",
        _run_rows(found.get("runs", [])),
        "</table>",
        _feeds_section(found.get("feeds")),
    ]  # fmt: skip
    states = " ".join(f"<b>{escape(w)}</b>: {escape(m)}." for w, (m, _) in STATUS_WORDS.items())
    parts.append(f"<p style='font-size:small'>Report states - {states}</p>")
    return "".join(parts).encode("utf-8")


FEED_WORDS = {
    "ok": ("delivered and verified", ""),
    "no_data": ("no data to send", ""),
    "pending": ("on its way", "warn"),
    "not_listed": ("not listed by Adobe", "warn"),
    "corrupt": ("arrived corrupt - resend asked of Adobe", "bad"),
    "missing": ("Adobe sent it, nothing arrived - resend asked", "bad"),
    "adobe_error": ("Adobe's request failed", "bad"),
    "unknown": ("Adobe's state is unknown - not taken as sent", "bad"),
}


def _feeds_section(feeds: Json | None) -> str:
    """Adobe's side of each data feed (the daily run's last look), problems first."""
    if feeds is None:
        return ("<h2>Data feeds at Adobe</h2><p>Not followed (set DataFeedIds to read each "
                "request's state from Adobe's Data Feed API).</p>")  # fmt: skip
    rows = []
    for row in feeds.get("rows", []):
        words, css = FEED_WORDS.get(str(row.get("verdict")), (str(row.get("verdict")), "bad"))
        adobe = row.get("adobe") or {}
        said = " ".join(str(adobe.get(k) or "") for k in ("adobe_state", "error_code", "error_msg"))
        resend = row.get("resend") or {}
        asked = f"{resend.get('count', 0)} of {resend.get('cap')}" if resend else "-"
        cells = [str(row.get("period")), str(row.get("rsid")), words, said.strip() or "-", asked]
        tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
        rows.append(f"<tr class='{css}'>{tds}</tr>")
    errors = "".join(f"<p><b>{escape(str(e))}</b></p>" for e in feeds.get("errors", []))
    return ("<h2>Data feeds at Adobe</h2>"
            f"<p>As read {escape(str(feeds.get('checked_at')))} (UTC).</p>{errors}"
            "<table><tr><th>period</th><th>report suite</th><th>verdict</th>"
            "<th>Adobe says</th><th>resends asked</th></tr>"
            + ("".join(rows) or "<tr><td colspan=5>no request in these days</td></tr>")
            + "</table>")  # fmt: skip


def relative(page_key: str) -> Link:
    """Links from a page stored at ``page_key`` to other keys of the same bucket."""
    import posixpath

    folder = posixpath.dirname(page_key)

    def link(report: str) -> str:
        return posixpath.relpath(report + ".html", folder or ".")

    return link
