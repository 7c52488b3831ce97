"""Secrets Manager: JSON secrets, read by ARN; the value never reaches a message."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from feedsync.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


# The stack output that holds each setting's secret (what to compare a wrong ARN with)
OUTPUTS = {
    "ADOBE_SECRET_ARN": "AdobeCredentialsSecretArn",
    "MARKETO_SECRET_ARN": "MarketoCredentialsSecretArn",
}


def secret_json(secrets: SecretsManagerClient, arn: str, setting: str) -> dict[str, Any]:
    """The JSON object in the secret ``arn``, which the environment variable ``setting``
    names (a wrong one is said by that name)."""
    from botocore.exceptions import ClientError

    try:
        text = secrets.get_secret_value(SecretId=arn)["SecretString"]
        value = json.loads(text)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        output = OUTPUTS.get(setting)
        raise ConfigError(
            f"{setting}={arn}: no such secret in this account and region"
            + (f" (compare the stack's {output} output)" if output else "")
        ) from None
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
