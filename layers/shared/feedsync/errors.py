"""Exceptions shared across feedsync.

Every error names the thing that failed (a file, a line, a setting) so an operator can act on
it without reading code. None of them ever carries a secret.
"""

from __future__ import annotations


class FeedsyncError(Exception):
    """Base class for every error feedsync raises on purpose."""


class ConfigError(FeedsyncError):
    """A setting is missing or invalid; the message names the setting."""


class NotConfiguredError(ConfigError):
    """A delivery cannot be handled with the settings in place (e.g. its report suite has no data
    source account); it is reported as ``not configured``, never sent somewhere else."""


class FeedError(FeedsyncError):
    """Something is wrong with a data feed delivery (a file, the manifest, the lookup archive)."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.reason = message


class FeedNameError(FeedError):
    """A file name does not follow Adobe's data feed naming."""


class ManifestError(FeedError):
    """The manifest is malformed."""


class CorruptFileError(FeedError):
    """A file cannot be decompressed or parsed (truncated gzip, bad escape, wrong column count)."""


class IntegrityError(FeedError):
    """A file does not match its manifest entry (digest, size, record count) or is missing."""


class ColumnError(FeedError):
    """A configured column is not in the delivery's column_headers.tsv."""


class ApiError(FeedsyncError):
    """A remote API refused a call or answered with something unusable.

    ``code`` is the service's own error code (Adobe ``403025``/``invalid_client``, Marketo
    ``607``...), ``status`` the HTTP status; the message never carries a secret or a token.
    """

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        operation: str = "",
    ) -> None:
        where = f" {operation}" if operation else ""
        parts = [p for p in (f"HTTP {status}" if status else "", code or "") if p]
        detail = f" [{', '.join(parts)}]" if parts else ""
        super().__init__(f"{service}{where}{detail}: {message}")
        self.service = service
        self.status = status
        self.code = code
        self.operation = operation
        self.detail = message


class AuthError(ApiError):
    """Credentials were refused (bad client id/secret, wrong scope, expired or bad JWT)."""


class RateLimitedError(ApiError):
    """The service kept answering 'too many requests' until the retries or the time ran out."""


class ServiceUnavailableError(ApiError):
    """5xx or connection failures until the retries or the time ran out."""


class OutcomeUnknownError(ApiError):
    """A non-idempotent call (an upload) was sent but its answer was lost.

    The caller must look the result up (job listing, idempotency key) before sending again.
    """


class QuotaExhaustedError(ApiError):
    """A daily quota is used up (Marketo 607); nothing more can be done today."""


class BusyError(FeedsyncError):
    """Another invocation (a daily run) holds what this command would change: run it again
    once that is done (exit 1)."""
