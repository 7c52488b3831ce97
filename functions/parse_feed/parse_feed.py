"""ParseFeedFunction: an Adobe data feed file landed in the feed bucket.

Thin by design: decode the event, call the parse step, map the result to logs and metrics.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedsync.config import ParseFunctionConfig
from feedsync.pipeline.parse import handle_feed_object, raise_for_status
from feedsync.pipeline.s3events import object_keys
from feedsync.storage import S3Store

logger = Logger()
metrics = Metrics()
tracer = Tracer()

CONFIG = ParseFunctionConfig.from_env()  # cold start: a bad setting fails here, named
S3 = boto3.client("s3")
STATE = S3Store(S3, CONFIG.state_bucket)


def _record_metrics(result: dict[str, Any]) -> None:
    status = result.get("status", "unknown")
    metrics.add_metric(name=f"Files_{status}", unit=MetricUnit.Count, value=1)
    if status in ("parsed", "complete"):
        metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=result["rows"])
        metrics.add_metric(name="RowsCounted", unit=MetricUnit.Count, value=result["counted_rows"])
    if status == "complete":
        metrics.add_metric(
            name="VisitorsPending", unit=MetricUnit.Count, value=result["visitors_pending"]
        )
    if status == "failed" and "delivery" in result:
        metrics.add_metric(name="DeliveriesFailed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = []
    for bucket, key in object_keys(event):
        logger.append_keys(feed_object=f"s3://{bucket}/{key}")
        result = handle_feed_object(S3Store(S3, bucket), STATE, key, CONFIG.settings)
        _record_metrics(result)
        log = logger.error if result.get("status") == "failed" else logger.info
        log("feed object handled", extra={"result": _brief(result)})
        results.append(_brief(result))
        if "delivery" in result:
            raise_for_status(result)  # a failed delivery must reach Lambda's failure handling
    return {"results": results}


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "files"}
