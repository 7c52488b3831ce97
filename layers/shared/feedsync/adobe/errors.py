"""Adobe error bodies parsed into the shared typed exceptions."""

from __future__ import annotations

from typing import Any

import requests

from feedsync.errors import ApiError, AuthError, RateLimitedError
from feedsync.transport import operation_name

_CODE_KEYS = ("error_code", "errorCode", "code", "error")
_MESSAGE_KEYS = (
    "message",
    "error_description",
    "errorDescription",
    "errorMessage",
    "detail",
    "title",
)


class AdobeApiError(ApiError):
    """An Adobe API answered with an error; ``code`` is Adobe's (e.g. 403025, invalid_scope)."""


class AdobeAuthError(AdobeApiError, AuthError):
    """IMS refused the credentials, or a call stayed unauthorised after a token refresh."""


class AdobeRateLimitedError(AdobeApiError, RateLimitedError):
    """429 (e.g. 429050) or a pacing rule that cannot be met in the time left."""


def _pick(body: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str | int) and str(value):
            return str(value)
    return None


def error_from_response(service: str, response: requests.Response) -> AdobeApiError:
    status = response.status_code
    operation = operation_name(response.request.method or "", response.request.url or "")
    code = message = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict):  # {"error": {"code": ..., "message": ...}}
            body = nested
        code = _pick(body, _CODE_KEYS)
        message = _pick(body, _MESSAGE_KEYS)
        errors = body.get("errors")
        if message is None and isinstance(errors, list) and errors:
            message = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )
    if message is None:
        text = response.text.strip().replace("\n", " ")
        message = text[:300] if text else response.reason or "no detail"
    kind: type[AdobeApiError] = AdobeApiError
    if (
        status in (401, 403)
        and code
        in (
            "invalid_client",
            "invalid_scope",
            "invalid_token",
            "unauthorized_client",
            "invalid_grant",
        )
    ) or status == 401:
        kind = AdobeAuthError
    elif status == 429:
        kind = AdobeRateLimitedError
    return kind(service, message, status=status, code=code, operation=operation)


def raise_for_error(service: str, response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        raise error_from_response(service, response)
    return response


def json_body(service: str, response: requests.Response) -> Any:
    """The JSON body, or a clear error when the service answered something else."""
    try:
        return response.json()
    except ValueError:
        operation = operation_name(response.request.method or "", response.request.url or "")
        snippet = response.text[:120].replace("\n", " ")
        kind = response.headers.get("Content-Type", "no content type")
        raise AdobeApiError(
            service,
            f"expected JSON, got {kind}: {snippet!r}",
            status=response.status_code,
            operation=operation,
        ) from None
