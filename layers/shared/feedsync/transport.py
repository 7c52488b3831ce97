"""HTTP with timeouts, bounded retries and a deadline, shared by the Adobe and Marketo clients.

Rules every remote call follows:
- every request has a connect and a read timeout, shortened to what the invocation has left;
- 429, 5xx and connection failures are retried with exponential backoff and full jitter,
  honouring ``Retry-After``, but never past the deadline;
- a request that is not idempotent (an upload) is re-sent only when the server provably did not
  take it (connection refused, 429, 503). When its answer is lost (read timeout, dropped
  connection, 500/502/504) it raises OutcomeUnknownError so the caller can look the result up.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from feedsync.deadline import Deadline
from feedsync.errors import OutcomeUnknownError, RateLimitedError, ServiceUnavailableError

logger = logging.getLogger(__name__)

_REFUSED_STATUSES = frozenset({429, 503})  # the server says it did not act on the request
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))  # noqa: S311


def retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor an HTTP date: fall back to backoff
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "NameResolutionError" in text
    )


def operation_name(method: str, url: str) -> str:
    """``POST /path`` without host or query: safe for messages (queries may hold secrets)."""
    return f"{method} {urlsplit(url).path}"


class Transport:
    """One ``requests.Session`` per service with the rules above."""

    def __init__(
        self,
        service: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        deadline: Deadline | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self.deadline = deadline or Deadline()
        self.session = session or requests.Session()
        if session is None:
            # urllib3 must not retry on its own: this class decides what is safe to re-send.
            adapter = HTTPAdapter(max_retries=0, pool_maxsize=16)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
        self.sleep = sleep

    def _timeout(self, operation: str) -> tuple[float, float]:
        left = self.deadline.remaining()
        if left <= 1.0:
            raise ServiceUnavailableError(
                self.service, "no time left in this invocation to call", operation=operation
            )
        return (min(self.connect_timeout, left), min(self.read_timeout, left))

    def _wait(self, delay: float, operation: str, error: Exception) -> None:
        # Only wait when the retry can still finish in time (one second of call at least).
        if not self.deadline.allows(delay + 1.0):
            raise error
        logger.info(
            "retrying %s %s in %.1fs: %s", self.service, operation, delay, type(error).__name__
        )
        self.sleep(delay)

    def send(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        """The response for any status below 500 except 429; raises after retries otherwise."""
        operation = operation_name(method, url)
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method, url, timeout=self._timeout(operation), **kwargs
                )
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if not idempotent and not _not_sent(exc):
                    raise OutcomeUnknownError(
                        self.service,
                        f"the request was sent but its answer was lost ({reason})",
                        operation=operation,
                    ) from None
                error = ServiceUnavailableError(
                    self.service, f"connection failed ({reason})", operation=operation
                )
                if last:
                    raise error from None
                self._wait(self.retry.backoff(attempt), operation, error)
                continue
            status = response.status_code
            if status not in _RETRY_STATUSES:
                return response
            if not idempotent and status not in _REFUSED_STATUSES:
                raise OutcomeUnknownError(
                    self.service,
                    f"the server failed while handling the request (HTTP {status})",
                    status=status,
                    operation=operation,
                )
            rate_limited = status == 429
            error_type = RateLimitedError if rate_limited else ServiceUnavailableError
            retry_error = error_type(
                self.service,
                "too many requests" if rate_limited else "service unavailable",
                status=status,
                operation=operation,
            )
            if last:
                raise retry_error
            hinted = retry_after(response)
            delay = hinted if hinted is not None else self.retry.backoff(attempt)
            self._wait(delay, operation, retry_error)
        raise AssertionError("unreachable")  # pragma: no cover
