"""ParseFeedFunction: an Adobe data feed file landed in the feed bucket.

Thin by design: decode the event (an S3 notification, EventBridge, or a backfill item from
BackfillStateMachine), call the parse step, map the outcome to logs and metrics.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedsync import logs, tracing
from feedsync import metrics as names
from feedsync.aws.s3 import S3Store
from feedsync.config import ParseFunctionConfig
from feedsync.parse.observe import parse_figures
from feedsync.parse.s3events import feed_objects
from feedsync.parse.step import handle_feed_object, raise_for_status
from feedsync.state.records import DeliveryRecord

logger = Logger()
metrics = Metrics()
logs.configure(logger)
names.expect_empty_flushes()

CONFIG = ParseFunctionConfig.from_env()  # cold start: a bad setting fails here, named
S3 = boto3.client("s3")
STATE = S3Store(S3, CONFIG.state_bucket)


@logger.inject_lambda_context
@tracing.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = []
    for bucket, key in feed_objects(event):
        logger.append_keys(feed_object=f"s3://{bucket}/{key}")
        outcome = handle_feed_object(S3Store(S3, bucket), STATE, key, CONFIG.settings)
        brief = parse_figures(outcome, metrics)
        (logger.error if brief["status"] == "failed" else logger.info)(
            "feed object handled", extra={"result": brief}
        )
        results.append(brief)
        if isinstance(outcome, DeliveryRecord):
            raise_for_status(outcome)  # a failed delivery must reach Lambda's failure handling
    return {"results": results}
