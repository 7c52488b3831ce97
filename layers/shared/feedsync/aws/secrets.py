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
    unset = sorted(k for k, v in value.items() if _placeholder(v))
    if unset:
        raise ConfigError(
            f"secret {arn} still holds the template's placeholder for {', '.join(unset)}: put "
            "the real credential in it (README 'Adobe set-up' / 'Marketo set-up')"
        )
    return value


PLACEHOLDER = "set-me"  # what template.yaml generates the credential secrets with


def _placeholder(value: Any) -> bool:
    return isinstance(value, str) and (value == PLACEHOLDER or value.startswith(PLACEHOLDER + "@"))
