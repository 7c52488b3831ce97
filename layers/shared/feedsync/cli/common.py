"""What every command shares: output in text or ``--json``, Adobe clients from the environment."""

from __future__ import annotations

import json
import os
from typing import Any

from feedsync.errors import FeedsyncError


class CliError(FeedsyncError):
    """Bad usage or input on the command line (exit status 2)."""


def emit(value: Any, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        print(json.dumps(value, indent=2, default=str))
    else:
        print(text)


def adobe_session() -> Any:
    """An AdobeSession from ADOBE_SECRET_ARN (the stack's secret, as the function reads it),
    else ``ADOBE_*`` variables or ``ADOBE_CREDENTIALS_FILE``."""
    from feedsync.adobe.credentials import AdobeCredentials
    from feedsync.adobe.endpoints import AdobeEndpoints
    from feedsync.adobe.session import AdobeSession

    arn = os.environ.get("ADOBE_SECRET_ARN", "").strip()
    if arn:
        import boto3

        from feedsync.aws.secrets import secret_json

        values = secret_json(boto3.client("secretsmanager"), arn, "ADOBE_SECRET_ARN")
        credentials = AdobeCredentials.from_mapping(values, f"secret {arn}")
    else:
        credentials = AdobeCredentials.from_env()
    return AdobeSession.create(credentials, AdobeEndpoints.from_env())


def analytics_client() -> Any:
    from feedsync.adobe.analytics import AnalyticsClient

    return AnalyticsClient(adobe_session(), os.environ.get("ADOBE_COMPANY_ID") or None)


def required_env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise CliError(f"{name} is not set ({what})")
    return value
