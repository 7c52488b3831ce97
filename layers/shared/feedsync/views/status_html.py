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
from feedsync.views import states
from feedsync.views.status import run_counts

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
    "padding:.3em .6em;text-align:left}td.n{text-align:right}th{background:#f4f4f4}"
    "tr.bad td{background:#fde8e8}tr.warn td{background:#fff6dd}.dry{color:#a60}"
    ".bad{color:#b00}.warn{color:#a60}.next{background:#f6f6ff;border-left:4px solid #66c;"
    "padding:.4em 1em}"
)
Link = Callable[[str], str]  # report key (reports/<run>) -> href
_rank = states.rank


def _css(state: str) -> str:
    return states.named(state).severity


def _n(value: Any) -> str:
    return f"<td class=n>{value:,}</td>" if isinstance(value, int) else f"<td>{value or '-'}</td>"


def _ordered(deliveries: list[Json]) -> list[Json]:
    return sorted(deliveries, key=lambda d: (_rank(str(d["state"])), d["day"], d["key"]))


def _anchor(n: int) -> str:
    return f"d{n}"


def _delivery_rows(deliveries: list[Json], link: Link) -> str:
    """One row a delivery; its link goes to its report, or - a delivery without one (failed,
    parsing, waiting for the run) - to its section below on this page (never a dead link)."""
    rows = []
    for n, d in enumerate(_ordered(deliveries)):
        href = link("reports/" + d["key"]) if d.get("has_report") else f"#{_anchor(n)}"
        report = f'<a href="{escape(href)}">{escape(d["key"])}</a>'
        rows.append(
            f"<tr class={_css(str(d['state']))}><td>{escape(d['day'])}</td>"
            f"<td>{escape(d['rsid'])}</td><td>{escape(str(d['state']))}</td>"
            f"{_n(d['rows'])}{_n(d['pending'])}{_n(d.get('matched'))}{_n(d.get('rejected'))}"
            f"<td>{escape(str(d.get('outcome') or d.get('uploads') or ''))}</td>"
            f"<td>{report}</td></tr>"
        )
    return "".join(rows) or "<tr><td colspan=9>no delivery in these days</td></tr>"


def _without_report(deliveries: list[Json]) -> str:
    """What the rows without a report link to: the state, its meaning and the next step."""
    parts = []
    for n, d in enumerate(_ordered(deliveries)):
        if d.get("has_report"):
            continue
        reasons = "".join(f"<li>{escape(str(r))}</li>" for r in d.get("reasons") or [])
        parts.append(
            f"<section id={_anchor(n)}><h3>{escape(d['key'])}</h3>"
            f"<p>State: <b class={_css(str(d['state']))}>{escape(str(d['state']))}</b> - "
            f"{escape(str(d.get('meaning') or ''))}.</p>"
            + (f"<p>Why:</p><ul>{reasons}</ul>" if reasons else "")
            + f"<p class=next>What to do next: {escape(str(d.get('next_step') or ''))}.</p>"
            "</section>"
        )
    if not parts:
        return ""
    return "<h2>Deliveries without a report yet</h2>" + "".join(parts)


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
        counts = run_counts(run)
        rec = run.get("reconciliation") or {}
        verdicts = (
            f"{rec.get('accepted', 0)} accepted, {rec.get('failed', 0)} failed" if rec else ""
        )
        rows.append(
            f"<tr><td>{escape(str(run['finished_at']))}</td>"
            f"<td>{escape(counts)}</td><td>{escape(verdicts)}</td></tr>"
        )
    return "".join(rows) or "<tr><td colspan=3>no daily run yet</td></tr>"


def render(found: Json, link: Link, generated: str, expires: str = "") -> bytes:
    """``expires``: when the page's report links stop working (pre-signed), said at the top."""
    days = found.get("days", "")
    bad = sum(1 for d in found["deliveries"] if _css(str(d["state"])) == "bad")
    head = f"<b class=bad>{bad} need a look</b>" if bad else "nothing needs a look"
    parts = [
        "<!doctype html><meta charset=utf-8><title>feedsync status</title>",
        f"<style>{_STYLE}</style><h1>feedsync status</h1>",
        f"<p>Deliveries of the last {escape(str(days))} days, what needs a person first: "
        f"{head}. Generated {escape(generated)} (UTC)."
        + (f" <b class=warn>The report links are pre-signed and stop working at "
           f"{escape(expires)} (UTC)</b>: run <code>feedsync status --html</code> again for "
           "fresh ones." if expires else "")
        + "</p>",
        "<table><tr><th>day</th><th>report suite</th><th>state</th><th>hits</th>"
        "<th>pending visitors</th><th>found in the CRM</th><th>rejected rows</th><th>Adobe</th>"
        "<th>report</th></tr>",
        _delivery_rows(found["deliveries"], link),
        "</table><h2>Dry runs (nothing sent)</h2><table><tr><th>run</th><th>delivery</th>"
        "<th>state</th><th>found in the CRM</th><th>would send</th><th></th></tr>",
        _dry_rows(found.get("dry_runs", []), link) or "<tr><td colspan=6>none</td></tr>",
        "</table><h2>Last runs</h2><table><tr><th>finished</th><th>deliveries</th>"
        "<th>Adobe's verdicts read</th></tr>",
        _run_rows(found.get("runs", [])),
        "</table>",
        _feeds_section(found.get("feeds")),
        _without_report(found["deliveries"]),
    ]  # fmt: skip
    legend = " ".join(f"<b>{escape(s.name)}</b>: {escape(s.meaning)}." for s in states.STATES)
    parts.append(f"<p style='font-size:small'>States - {legend}</p>")
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
        # "./" first: a folder named "javascript:..." (the feed bucket's, as Adobe wrote it)
        # must stay a path, never become a link's scheme
        path = posixpath.relpath(report + ".html", folder or ".")
        return path if path.startswith("../") else "./" + path

    return link
