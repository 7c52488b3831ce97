"""Every metric feedsync emits, by name (the dashboard and the alarms read these names).

The pipeline reports figures through a ``Metric`` callable; in Lambda it is backed by
Powertools' EMF metrics (namespace ``feedsync``), in tests by a list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# parse step (one metric with a Status dimension for files and deliveries)
FEED_OBJECTS = "FeedObjects"  # dimension Status: parsed, failed, deferred, ignored, complete
ROWS = "Rows"
ROWS_COUNTED = "RowsCounted"
ROWS_EXCLUDED = "RowsExcluded"
DELIVERIES_COMPLETE = "DeliveriesComplete"
DELIVERIES_FAILED = "DeliveriesFailed"

# daily run
VISITORS_PENDING = "VisitorsPending"
VISITORS_LOOKED_UP = "VisitorsLookedUp"
VISITORS_MATCHED = "VisitorsMatched"
ROWS_UPLOADED = "RowsUploaded"
ROWS_REJECTED = "RowsRejected"
CRM_CALLS = "CrmCalls"
CRM_QUOTA_EXHAUSTED = "CrmQuotaExhausted"
DELIVERIES_ENRICHED = "DeliveriesEnriched"
DAILY_RUNS_COMPLETED = "DailyRunsCompleted"
DELIVERY_RUNS_FAILED = "DeliveryRunsFailed"
DELIVERIES_NOT_CONFIGURED = "DeliveriesNotConfigured"
DELIVERIES_IGNORED = "DeliveriesIgnored"
UPLOADS_WAITING = "UploadsWaiting"
DELIVERIES_SKIPPED = "DeliveriesSkipped"  # failed verification: reported once
DELIVERIES_WAITING_FOR_CRM = "DeliveriesWaitingForCrm"  # the mirror/export is older than the day
# reconciliation (Adobe's verdict)
UPLOADS_ACCEPTED = "UploadsAcceptedAtAdobe"
UPLOADS_FAILED = "UploadsFailedAtAdobe"
UPLOADS_STUCK = "UploadsStuck"
VISITORS_RELEASED = "VisitorsReleased"
VISITORS_GIVEN_UP = "VisitorsGivenUp"
ROWS_SKIPPED_BY_ADOBE = "RowsSkippedByAdobe"  # rows of a file Adobe took but did not ingest
# the same, alarmed (RowsNotIngestedAlarm): a partial ingestion is never "accepted" silently
ROWS_NOT_INGESTED = "RowsNotIngested"
VERDICT_ERRORS = "VerdictErrors"  # a verdict that could not be read, or a status not documented
# feed health (Adobe's Data Feed API)
FEED_REQUESTS_FAILED = "FeedRequestsFailedAtAdobe"  # Adobe's request ended in an error
FEED_DELIVERIES_MISSING = "FeedDeliveriesMissing"  # Adobe says sent, nothing arrived
FEED_DELIVERIES_CORRUPT = "FeedDeliveriesCorrupt"  # arrived, failed MD5/size/count checks
FEED_STATES_UNKNOWN = "FeedRequestStatesUnknown"  # a request state no Adobe document names
FEED_RESENDS_REQUESTED = "FeedResendsRequested"  # resend/redo asked of Adobe
ADOBE_API_ERRORS = "AdobeApiErrors"  # dimension Status: the HTTP status
NOT_CONFIGURED = "NotConfigured"

ALL = tuple(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
STATUS_DIMENSION = "Status"


def powertools_sink(recorder: Any) -> Callable[[str, float], None]:
    """A Metric callable that adds Count metrics to a Powertools ``Metrics`` instance."""
    from aws_lambda_powertools.metrics import MetricUnit

    def emit(name: str, value: float) -> None:
        recorder.add_metric(name=name, unit=MetricUnit.Count, value=value)

    return emit


def emit_with_status(recorder: Any, name: str, status: str, value: float = 1) -> None:
    """One metric with a ``Status`` dimension (files and deliveries by outcome)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():  # single_metric prints at once, whatever the setting says
        return
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=recorder.namespace,
        default_dimensions=recorder.default_dimensions,
    ) as metric:
        metric.add_dimension(name="Status", value=status)


def expect_empty_flushes() -> None:
    """An invocation may leave the handler's recorder empty - ``FeedObjects`` goes out through
    ``single_metric`` (a lookup archive's event adds nothing else), a daily run may have nothing
    to do - and Powertools' warning about that is noise in the logs."""
    import warnings

    warnings.filterwarnings(
        "ignore", message="No application metrics to publish", category=UserWarning
    )
