"""Marketo REST: identity token, leads by filter type, with Marketo's error handling.

Marketo answers HTTP 200 with ``success: false`` and ``errors[{code, message}]``. Codes 601/602
(token invalid/expired) re-authenticate; 502, 604, 606 (rate), 608, 611, 615 (concurrency) are
retried with backoff; 607 (daily quota) stops: QuotaExhaustedError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from feedsync.crm.ratelimit import Limits, LocalRateLimiter, RateLimiter
from feedsync.errors import ApiError, AuthError, QuotaExhaustedError
from feedsync.secret import Secret
from feedsync.tokens import AccessToken, TokenCache
from feedsync.transport import RetryPolicy, Transport

SERVICE = "Marketo"
MAX_FILTER_VALUES = 300
RETRY_CODES = frozenset({"502", "604", "606", "608", "611", "615"})
REAUTH_CODES = frozenset({"601", "602"})
QUOTA_CODE = "607"

logger = logging.getLogger(__name__)


class MarketoError(ApiError):
    """Marketo refused a call with a code that retrying will not fix (e.g. 1003, 1006)."""


@dataclass(frozen=True)
class MarketoSettings:
    base_url: str  # https://123-ABC-456.mktorest.com
    client_id: str
    client_secret: Secret = field(repr=False)


@dataclass
class LookupStats:
    calls: int = 0
    retries: int = 0
    reauths: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, calls: int = 0, retries: int = 0, reauths: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.retries += retries
            self.reauths += reauths


class MarketoClient:
    def __init__(
        self,
        settings: MarketoSettings,
        *,
        limiter: RateLimiter | None = None,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.base = settings.base_url.rstrip("/")
        self.transport = transport or Transport(SERVICE)
        self.limiter: RateLimiter = limiter or LocalRateLimiter(Limits())
        self.retry = retry or RetryPolicy(attempts=6, base_delay=1.0, max_delay=20.0)
        self._clock = clock
        self._sleep = sleep
        self.tokens = TokenCache(self._fetch_token, clock)
        self.stats = LookupStats()

    # -- identity ------------------------------------------------------------------------
    def _fetch_token(self) -> AccessToken:
        # POST with a form body: the secret never sits in a URL (and so in no access log).
        response = self.transport.send(
            "POST",
            f"{self.base}/identity/oauth/token",
            idempotent=True,
            data={
                "grant_type": "client_credentials",
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret.reveal(),
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or "access_token" not in body:
            raise AuthError(
                SERVICE,
                str(body.get("error_description") or body.get("error") or "identity refused"),
                status=response.status_code,
                code=body.get("error"),
                operation="POST /identity/oauth/token",
            )
        lifetime = float(body.get("expires_in", 0))
        return AccessToken(Secret(str(body["access_token"])), self._clock() + lifetime, lifetime)

    def token(self) -> Secret:
        return self.tokens.token()

    # -- calls ---------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, token: Secret, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {token.reveal()}", **kwargs.pop("headers", {})}
        with self.limiter.slot():
            response = self.transport.send(
                method, f"{self.base}{path}", idempotent=idempotent, headers=headers, **kwargs
            )
        self.stats.add(calls=1)
        return response

    @staticmethod
    def _body(response: Any, operation: str) -> dict[str, Any]:
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise MarketoError(
                SERVICE,
                f"expected JSON, got {response.text[:80]!r}",
                status=response.status_code,
                operation=operation,
            ) from None
        if response.status_code >= 400 and not body.get("errors"):
            raise MarketoError(
                SERVICE, response.text[:200], status=response.status_code, operation=operation
            )
        return body

    def request(
        self, method: str, path: str, operation: str, idempotent: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        """One REST call under the limiter, with Marketo's retry rules; the successful body.

        Reads (a POST with ``_method=GET``, a status) and enqueues may be repeated freely. A
        call that creates something (an export job) passes ``idempotent=False``: a lost answer
        is then an OutcomeUnknownError for the caller to resolve, never a second job.
        """
        for attempt in range(self.retry.attempts):
            token = self.tokens.token()
            response = self._send(method, path, token, idempotent, **kwargs)
            body = self._body(response, operation)
            if body.get("success"):
                return body
            if self._retry(body, token, attempt, operation):
                continue
        raise MarketoError(SERVICE, "gave up after repeated errors", operation=operation)

    def _retry(self, body: dict[str, Any], token: Secret, attempt: int, operation: str) -> bool:
        """Whether to try again after ``success: false``; raises when it must not."""
        errors = body.get("errors") or [{"code": "?", "message": "success false, no errors"}]
        code, message = str(errors[0].get("code")), str(errors[0].get("message"))
        if code == QUOTA_CODE:
            raise QuotaExhaustedError(SERVICE, message, code=code)
        if code in REAUTH_CODES:
            self.tokens.invalidate(token)
            self.stats.add(reauths=1)
            return True
        if code in RETRY_CODES and attempt < self.retry.attempts - 1:
            self.stats.add(retries=1)
            delay = self.retry.backoff(attempt + 1)
            logger.info("Marketo %s (%s); retrying in %.1fs", code, message, delay)
            self._sleep(delay)
            return True
        raise MarketoError(SERVICE, message, code=code, operation=operation)

    def _call(self, form: dict[str, str]) -> dict[str, Any]:
        """One leads.json call: POST with ``_method=GET`` (300 ids overflow a URL)."""
        return self.request(
            "POST", "/rest/v1/leads.json", "leads by filter", params={"_method": "GET"}, data=form
        )

    def download(self, path: str, start: int = 0) -> bytes:
        """A file body (the bulk export), from byte ``start`` on (``Range``, to resume)."""
        token = self.tokens.token()
        headers = {"Range": f"bytes={start}-"} if start else {}
        response = self._send("GET", path, token, headers=headers)
        if response.status_code == 401 or response.status_code >= 400:
            self.tokens.invalidate(token)
            raise MarketoError(
                SERVICE, response.text[:200], status=response.status_code, operation=f"GET {path}"
            )
        data: bytes = response.content
        return data

    def leads_by_filter(
        self, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        """Leads whose ``field`` is one of ``values`` (<= 300), every page."""
        if not 0 < len(values) <= MAX_FILTER_VALUES:
            raise ValueError(f"1..{MAX_FILTER_VALUES} filter values a call, got {len(values)}")
        bad = [v for v in values if "," in v]
        if bad:
            raise ValueError(f"filter values cannot contain ',': {bad[:3]}")
        form = {
            "filterType": field,
            "filterValues": ",".join(values),
            "fields": ",".join(dict.fromkeys([field, *fields])),
            "batchSize": str(MAX_FILTER_VALUES),
        }
        while True:
            body = self._call(form)
            yield from body.get("result", [])
            token = body.get("nextPageToken")
            if not token or not body.get("moreResult", True) or not body.get("result"):
                return
            form = {**form, "nextPageToken": str(token)}

    def lookup(
        self, field: str, ids: Iterable[str], fields: Sequence[str], workers: int = 1
    ) -> dict[str, dict[str, Any]]:
        """Visitor id -> lead, for ids in chunks of 300 (the first lead wins on duplicates).

        ``workers`` calls run at once; the limiter still decides when each may go.
        """
        values = list(ids)
        chunks = [
            values[i : i + MAX_FILTER_VALUES] for i in range(0, len(values), MAX_FILTER_VALUES)
        ]
        found: dict[str, dict[str, Any]] = {}
        if workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                self._collect(field, chunk, fields, found)
            return found
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketo") as pool:
            parts = list(pool.map(lambda c: self._collect(field, c, fields, {}), chunks))
        for part in parts:  # in chunk order, so "first lead wins" does not depend on timing
            for key, lead in part.items():
                found.setdefault(key, lead)
        return found

    def _collect(
        self, field: str, chunk: list[str], fields: Sequence[str], found: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        for lead in self.leads_by_filter(field, chunk, fields):
            key = str(lead.get(field) or "")
            if key and key not in found:
                found[key] = lead
        return found
