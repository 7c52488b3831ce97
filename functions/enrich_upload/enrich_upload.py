"""EnrichUploadFunction: the daily run (schedule), a backfill, or a continuation.

Thin by design: decode the event, build the ports from validated config, run, report. Until it
is configured (a parameter, the mapping file or a secret missing) it answers "not configured",
names what is missing in one log line and one metric (NotConfiguredAlarm) - it does not fail
every invocation into the failure queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedsync import logs, tracing
from feedsync import metrics as names
from feedsync.aws.clients import AwsClients
from feedsync.config import EnrichFunctionConfig, load_enrich_config
from feedsync.daily.run import run_daily
from feedsync.deadline import Deadline
from feedsync.errors import ConfigError
from feedsync.metrics import powertools_sink
from feedsync.settings import RunRequest
from feedsync.wiring import build_ports, settings

logger = Logger()
metrics = Metrics()
logs.configure(logger)
names.expect_empty_flushes()

CONFIG, PROBLEM = load_enrich_config()  # cold start: validated once; a problem is kept, named
CLIENTS = AwsClients.create(CONFIG.state_table, with_lambda=True) if CONFIG else None


def _continue(context: LambdaContext) -> Any:
    def invoke(next_event: dict[str, Any]) -> None:
        assert CLIENTS is not None
        CLIENTS.lambda_.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps(next_event).encode(),
        )
        logger.info("continuing in a new invocation", extra={"next_event": next_event})

    return invoke


def _not_configured(problem: str) -> dict[str, Any]:
    logger.error("feedsync is not configured yet: %s", problem)
    metrics.add_metric(name=names.NOT_CONFIGURED, unit="Count", value=1)
    return {"status": "not_configured", "error": problem, "deliveries": []}


def _run(config: EnrichFunctionConfig, event: dict[str, Any], context: LambdaContext) -> Any:
    assert CLIENTS is not None
    request = RunRequest.from_event(event, dry_run_default=config.dry_run)
    deadline = Deadline.from_lambda_context(context, reserve=30.0)
    ports = build_ports(
        config,
        CLIENTS,
        deadline,
        request.dry_run,
        owner=context.aws_request_id,
        continue_later=_continue(context),
        metric=powertools_sink(metrics),
        on_adobe_error=lambda status: names.emit_with_status(
            metrics, names.ADOBE_API_ERRORS, str(status)
        ),
    )
    return run_daily(ports, settings(config), request, deadline)


@logger.inject_lambda_context
@tracing.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if CONFIG is None:
        return _not_configured(PROBLEM)
    try:
        summary: dict[str, Any] = _run(CONFIG, event, context)
    except ConfigError as exc:  # the mapping file, a secret's placeholder...
        return _not_configured(str(exc))
    logger.info("daily run done", extra={"summary": summary})
    return summary
