"""The CLI's mistakes-to-messages table: one clear line and a documented exit status for what
users actually hit, never a traceback. 1: the work failed; 2: usage or configuration."""

from __future__ import annotations

import errno
import os

from feedsync.errors import ApiError, BusyError, ConfigError, FeedError, FeedsyncError

WORK_FAILED, USAGE = 1, 2


def _aws(exc: BaseException) -> tuple[str, int] | None:
    """botocore's exceptions, in the words an operator needs."""
    try:
        from botocore import exceptions as aws
    except ImportError:  # pragma: no cover - boto3 comes with feedsync
        return None
    if isinstance(exc, aws.ProfileNotFound):
        profile = getattr(exc, "kwargs", {}).get("profile") or os.environ.get("AWS_PROFILE", "")
        return (
            f"no AWS profile named {profile!r}: check AWS_PROFILE / --profile "
            "(`aws configure list-profiles` lists them)",
            USAGE,
        )
    if isinstance(exc, aws.NoRegionError):
        return (
            "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or `aws configure`)",
            USAGE,
        )
    if isinstance(exc, aws.NoCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            USAGE,
        )
    if isinstance(exc, aws.EndpointConnectionError):
        where = os.environ.get("AWS_ENDPOINT_URL") or getattr(exc, "kwargs", {}).get(
            "endpoint_url", ""
        )
        return (
            f"cannot reach AWS at {where or 'its endpoint'}: "
            "is the network (or the local moto server) up?",
            WORK_FAILED,
        )
    if isinstance(exc, aws.ClientError):
        return _client_error(exc), USAGE if _is_missing(exc) else WORK_FAILED
    return None


def _is_missing(exc: BaseException) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in (
        "NoSuchBucket",
        "ResourceNotFoundException",
        "AccessDenied",
        "AccessDeniedException",
    )


def _client_error(exc: BaseException) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    if code == "NoSuchBucket":
        bucket = error.get("BucketName") or os.environ.get("STATE_BUCKET", "")
        return (
            f"no such bucket {bucket}: check STATE_BUCKET (the stack's StateBucketName output) "
            "and the region"
        )
    if code == "ResourceNotFoundException" and getattr(exc, "operation_name", "") in (
        "GetSecretValue",
        "DescribeSecret",
    ):
        return (
            f"no such secret ({message}): check ADOBE_SECRET_ARN / MARKETO_SECRET_ARN (the "
            "stack's AdobeCredentialsSecretArn / MarketoCredentialsSecretArn outputs) and the "
            "region"
        )
    if code == "ResourceNotFoundException":
        table = os.environ.get("STATE_TABLE", "")
        return (
            f"no such table {table}: check STATE_TABLE (the stack's StateTableName output) and "
            "the region"
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return f"AWS refused access ({message}): the credentials in use lack a permission"
    return f"AWS answered {code}: {message}"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for an error the CLI knows; None for a real bug."""
    if isinstance(exc, ApiError | FeedError | BusyError):
        return str(exc), WORK_FAILED
    if isinstance(exc, ConfigError | FeedsyncError):
        return str(exc), USAGE
    if isinstance(
        exc, IsADirectoryError | NotADirectoryError | FileNotFoundError | PermissionError
    ):
        return f"{exc.filename}: {exc.strerror}", USAGE
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        what = exc.strerror or "a port is already in use"
        return (what if "choose another" in what else f"{what}: choose another port"), USAGE
    return _aws(exc)
