"""EnrichUploadFunction: the daily run (schedule), a backfill, or a continuation.

Thin by design: decode the event, build the ports from validated config, run, report.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedsync.config import EnrichFunctionConfig
from feedsync.pipeline.enrich import RunRequest, run_daily
from feedsync.transport import Deadline
from feedsync.wiring import build_ports, settings

logger = Logger()
metrics = Metrics()
tracer = Tracer()

CONFIG = EnrichFunctionConfig.from_env()  # cold start: a bad setting fails here, named
CLIENTS: dict[str, Any] = {
    "s3": boto3.client("s3"),
    "secretsmanager": boto3.client("secretsmanager"),
    "table": boto3.resource("dynamodb").Table(CONFIG.state_table),
}
LAMBDA = boto3.client("lambda")
METRIC_NAMES = {
    "pending": "VisitorsPending",
    "looked_up": "VisitorsLookedUp",
    "matched": "VisitorsMatched",
    "uploaded_rows": "RowsUploaded",
    "rejected": "RowsRejected",
    "crm_calls": "CrmCalls",
    "quota_exhausted": "CrmQuotaExhausted",
    "deliveries_enriched": "DeliveriesEnriched",
}


def _metric(name: str, value: float) -> None:
    metrics.add_metric(name=METRIC_NAMES.get(name, name), unit=MetricUnit.Count, value=value)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RunRequest.from_event(event, dry_run_default=CONFIG.dry_run)
    deadline = Deadline.from_lambda_context(context, reserve=30.0)

    def continue_later(next_event: dict[str, Any]) -> None:
        LAMBDA.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps(next_event).encode(),
        )
        logger.info("continuing in a new invocation", extra={"next_event": next_event})

    ports = build_ports(
        CONFIG,
        CLIENTS,
        deadline,
        request.dry_run,
        owner=context.aws_request_id,
        continue_later=continue_later,
        metric=_metric,
    )
    summary = run_daily(ports, settings(CONFIG), request, deadline)
    logger.info("daily run done", extra={"summary": summary})
    return summary
