"""What the parse step reports about each feed object: a brief for the log, metrics for the
dashboard (one ``FeedObjects`` metric with a ``Status`` dimension, not a name per status)."""

from __future__ import annotations

from typing import Any

from feedsync import metrics
from feedsync.state.records import DeliveryRecord, FileResult, ObjectOutcome

Outcome = FileResult | DeliveryRecord | ObjectOutcome


def brief(outcome: Outcome) -> dict[str, Any]:
    data = outcome.to_json()
    return {k: v for k, v in data.items() if k != "files"}


def parse_figures(outcome: Outcome, recorder: Any) -> dict[str, Any]:
    """Emit the outcome's metrics on a Powertools ``Metrics`` recorder; return its brief."""
    status = str(outcome.status)
    metrics.emit_with_status(recorder, metrics.FEED_OBJECTS, status)
    if isinstance(outcome, DeliveryRecord):
        name = metrics.DELIVERIES_COMPLETE if outcome.complete else metrics.DELIVERIES_FAILED
        recorder.add_metric(name=name, unit="Count", value=1)
        if outcome.complete:  # rows count once, when their delivery is complete
            counts = outcome.counts
            for metric, value in (
                (metrics.ROWS, counts.rows),
                (metrics.ROWS_COUNTED, counts.counted_rows),
                (metrics.ROWS_EXCLUDED, counts.excluded_rows),
                (metrics.VISITORS_PENDING, outcome.visitors_pending or 0),
            ):
                recorder.add_metric(name=metric, unit="Count", value=value)
    return brief(outcome)
