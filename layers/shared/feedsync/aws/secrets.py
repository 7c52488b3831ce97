"""Secrets Manager: JSON secrets, read by ARN; the value never reaches a message."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from feedsync.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


def secret_json(secrets: SecretsManagerClient, arn: str) -> dict[str, Any]:
    try:
        text = secrets.get_secret_value(SecretId=arn)["SecretString"]
        value = json.loads(text)
    except ValueError:
        raise ConfigError(f"secret {arn}: not a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(f"secret {arn}: not a JSON object")
    return value
