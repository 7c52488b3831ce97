"""EnrichUploadFunction: the daily run (schedule), a backfill, or a continuation.

Thin by design: decode the event, build the ports from validated config, run, report.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedsync import logs
from feedsync.aws.clients import AwsClients
from feedsync.config import EnrichFunctionConfig
from feedsync.deadline import Deadline
from feedsync.metrics import powertools_sink
from feedsync.pipeline.enrich import run_daily
from feedsync.pipeline.request import RunRequest
from feedsync.wiring import build_ports, settings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
logs.configure(logger)

CONFIG = EnrichFunctionConfig.from_env()  # cold start: a bad setting fails here, named
CLIENTS = AwsClients.create(CONFIG.state_table, with_lambda=True)


def _continue(context: LambdaContext) -> Any:
    def invoke(next_event: dict[str, Any]) -> None:
        CLIENTS.lambda_.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps(next_event).encode(),
        )
        logger.info("continuing in a new invocation", extra={"next_event": next_event})

    return invoke


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RunRequest.from_event(event, dry_run_default=CONFIG.dry_run)
    deadline = Deadline.from_lambda_context(context, reserve=30.0)
    ports = build_ports(
        CONFIG,
        CLIENTS,
        deadline,
        request.dry_run,
        owner=context.aws_request_id,
        continue_later=_continue(context),
        metric=powertools_sink(metrics),
    )
    summary = run_daily(ports, settings(CONFIG), request, deadline)
    logger.info("daily run done", extra={"summary": summary})
    return summary
