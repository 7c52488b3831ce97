"""``--stack NAME`` / FEEDSYNC_STACK: the CLI reads a deployed stack's outputs and its daily
function's settings itself, instead of a dozen exports. What the environment already sets wins
(an override stays an override)."""

from __future__ import annotations

import os
from typing import Any

from feedsync.cli.common import CliError

# stack output -> the variable the CLI reads it from
OUTPUTS = {
    "StateBucketName": "STATE_BUCKET",
    "StateTableName": "STATE_TABLE",
    "FeedBucketName": "FEED_BUCKET",
    "AdobeCredentialsSecretArn": "ADOBE_SECRET_ARN",
    "MarketoCredentialsSecretArn": "MARKETO_SECRET_ARN",
    "BackfillStateMachineArn": "BACKFILL_STATE_MACHINE_ARN",
    "AlertTopicArn": "ALERT_TOPIC_ARN",
    "EnrichUploadFunctionName": "ENRICH_FUNCTION_NAME",
    "ParseFeedFunctionArn": "PARSE_FUNCTION_ARN",
}


def outputs(name: str) -> dict[str, str]:
    import boto3
    from botocore.exceptions import ClientError

    try:
        found = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise CliError(f"--stack {name}: no such stack in this account and region") from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}


def function_settings(function: str) -> dict[str, str]:
    """The daily function's environment: the same settings `run-daily` then runs with."""
    import boto3

    config: Any = boto3.client("lambda").get_function_configuration(FunctionName=function)
    return dict((config.get("Environment") or {}).get("Variables") or {})


def apply(name: str) -> dict[str, str]:
    """Fill the environment from the stack; the variables set, by name."""
    found = outputs(name)
    values = {var: found[key] for key, var in OUTPUTS.items() if key in found}
    for function in (values.get("PARSE_FUNCTION_ARN"), values.get("ENRICH_FUNCTION_NAME")):
        if function:  # the daily function's settings win where both set one
            values = {**values, **function_settings(function)}
    values.update({var: found[key] for key, var in OUTPUTS.items() if key in found})
    if "FeedLocation" in found:  # s3://bucket/prefix
        values["FEED_PREFIX"] = found["FeedLocation"].removeprefix("s3://").partition("/")[2]
    applied = {k: v for k, v in values.items() if v and not os.environ.get(k)}
    os.environ.update(applied)
    return applied
