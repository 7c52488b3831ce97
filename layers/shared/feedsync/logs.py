"""Logging set-up shared by both functions: the library's loggers write the same structured
JSON as the handler's Powertools Logger, and the AWS SDK never logs below INFO (its DEBUG dumps
request and response bodies, Secrets Manager's included)."""

from __future__ import annotations

import logging
from typing import Any

QUIET = ("botocore", "boto3", "urllib3", "s3transfer")


def configure(handler_logger: Any) -> None:
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    copy_config_to_registered_loggers(source_logger=handler_logger, include={"feedsync"})
    for name in QUIET:
        sdk = logging.getLogger(name)
        sdk.setLevel(max(logging.INFO, sdk.getEffectiveLevel()))
