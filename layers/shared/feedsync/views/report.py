"""The run report: one delivery's totals, what this run did, and Adobe's verdicts so far.

Top-level figures are the delivery's totals (all runs of this content generation);
``this_run`` says what the latest invocation did (calls made, rows sent, jobs created), so a
re-run that sends nothing reads as such.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from feedsync.state.records import FIGURES, BatchFigures, Json, Status, Verdict, total


@dataclass
class ThisRun:
    batches: int = 0
    resumed: int = 0  # batches whose lost upload answers were looked up
    retried: int = 0  # batches re-sent after Adobe failed a file
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
            "jobs_created": sum(len(j) for j in f.jobs.values()),
        }


def adobe_summary(verdicts: list[Verdict], jobs: int) -> Json:
    """How many sent files Adobe accepted or failed, and how many still await a verdict."""
    by_outcome = Counter(v.outcome for v in verdicts)
    rows: Counter[str] = Counter()
    for v in verdicts:
        rows[v.outcome] += v.visitors
    return {
        "files_sent": jobs,
        "accepted": by_outcome["accepted"],
        "failed": by_outcome["failed"],
        "stuck": by_outcome["stuck"],
        "awaiting_verdict": max(0, jobs - by_outcome["accepted"] - by_outcome["failed"]),
        "visitors_accepted": rows["accepted"],
        "visitors_failed": rows["failed"],
    }


def build_report(
    head: Json,
    done: dict[int, BatchFigures],
    this_run: ThisRun,
    status: Status,
    error: str | None,
    open_batches: dict[str, list[int]],
    verdicts: list[Verdict],
) -> Json:
    totals = total([done[i] for i in sorted(done)])
    jobs: dict[str, list[Json]] = {}
    for index in sorted(done):
        for destination, refs in done[index].jobs.items():
            jobs.setdefault(destination, []).extend({**j.to_json(), "batch": index} for j in refs)
    figures: dict[str, Any] = {name: getattr(totals, name) for name in (*FIGURES, "crm_calls")}
    return {
        **head,
        "status": str(status),
        "error": error,
        "batches_done": len(done),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **figures,
        "delivery_totals": figures,
        "this_run": this_run.to_json(),
        "rejected_reasons": totals.rejected_reasons,
        "rejected_samples": [r.to_json() for r in totals.rejected_samples],
        "jobs": jobs,
        "waiting_batches": open_batches.get("waiting", []),
        "retry_batches": open_batches.get("retry", []),
        "adobe": adobe_summary(verdicts, sum(len(j) for j in jobs.values())),
        "verdicts": [v.to_json() for v in verdicts],
    }
