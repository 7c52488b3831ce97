"""Marketo stand-in: identity, leads by filter type, and Marketo's limits and error codes.

Enforces: client credentials; Bearer tokens (601 unknown, 602 expired); the 8 KB URL limit
(HTTP 414); at most 300 filter values (1003); paging with nextPageToken; 606 over the call rate
(sliding window), 615 over the concurrency, 607 over the daily quota. ``call_times`` keeps the
arrival time of every leads call, for the benchmark's "highest calls in any window".
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import threading
import time
from typing import Any

from sandbox.adobe import ISSUED_TOKEN_HOOKS
from sandbox.server import HttpError, Request, Response, SandboxServer

MAX_URL = 8192


def _fail(code: str, message: str) -> Response:
    return Response.json(
        {
            "requestId": secrets.token_hex(4),
            "success": False,
            "errors": [{"code": code, "message": message}],
        }
    )


class MarketoStandIn:
    def __init__(
        self,
        server: SandboxServer,
        *,
        client_id: str = "marketo-sandbox-client",
        client_secret: str = "marketo-sandbox-secret-0000",
        id_field: str = "Adobe_Visitor_ID",
        calls_per_window: int = 100,
        window: float = 20.0,
        concurrency: int = 10,
        daily_quota: int = 50_000,
        page_size: int = 300,
        latency: float = 0.0,
        token_lifetime: float = 3600.0,
    ) -> None:
        self.server = server
        self.client_id = client_id
        self.client_secret = client_secret
        self.id_field = id_field
        self.calls_per_window = calls_per_window
        self.window = window
        self.concurrency = concurrency
        self.daily_quota = daily_quota
        self.page_size = page_size
        self.latency = latency
        self.token_lifetime = token_lifetime
        self.leads: dict[str, list[dict[str, Any]]] = {}
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.call_times: list[float] = []
        self.refused: dict[str, int] = {}
        self.fail_next: list[str] = []  # Marketo error codes to answer the next calls with
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.RLock()  # _refuse is called with it held
        server.route("GET", r"/identity/oauth/token", self.identity)
        server.route("POST", r"/identity/oauth/token", self.identity)
        server.route("GET", r"/rest/v1/leads\.json", self.leads_call)
        server.route("POST", r"/rest/v1/leads\.json", self.leads_call)
        server.route("GET", r"/_sandbox/marketo", self.summary)
        from sandbox.marketo_export import BulkExportStandIn

        self.exports = BulkExportStandIn(self)
        self.exports.register()

    def add_lead(self, visitor: str, **fields: Any) -> dict[str, Any]:
        """A lead (``visitor`` may be "": a lead without a visitor id); createdAt and
        updatedAt default to now, for the bulk extract's filters."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lead = {
            "id": 1_000_000 + sum(len(v) for v in self.leads.values()),
            self.id_field: visitor,
            "createdAt": now,
            "updatedAt": now,
            **fields,
        }
        self.leads.setdefault(visitor, []).append(lead)
        return lead

    def all_leads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [lead for leads in self.leads.values() for lead in leads]

    def check_token(self, request: Request) -> Response | None:
        """None for a valid bearer token, else Marketo's 601/602 refusal."""
        token = request.header("authorization").removeprefix("Bearer ").strip()
        expires = self.tokens.get(token)
        if expires is None:
            return self.refuse("601", "Access token invalid")
        if expires <= time.time():
            return self.refuse("602", "Access token expired")
        with self.lock:
            if len(self.call_times) >= self.daily_quota:
                return self.refuse("607", "Daily quota reached")
            self.call_times.append(request.received_at or time.time())
        return None

    def refuse(self, code: str, message: str) -> Response:
        return self._refuse(code, message)

    def max_calls_in_window(self, window: float | None = None) -> int:
        span = self.window if window is None else window
        times = sorted(self.call_times)
        best = start = 0
        for end, stamp in enumerate(times):
            while stamp - times[start] >= span:
                start += 1
            best = max(best, end - start + 1)
        return best

    def _refuse(self, code: str, message: str) -> Response:
        with self.lock:
            self.refused[code] = self.refused.get(code, 0) + 1
        return _fail(code, message)

    def identity(self, request: Request, _: re.Match[str]) -> Response:
        params = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST":
            params.update(request.form())
        if params.get("grant_type") != "client_credentials":
            raise HttpError(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            raise HttpError(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        token = f"{secrets.token_hex(16)}:ab"
        for hook in ISSUED_TOKEN_HOOKS:
            hook(token)
        with self.lock:
            self.token_requests += 1
            self.tokens[token] = time.time() + self.token_lifetime
        return Response.json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
                "scope": "feedsync@example.com",
            }
        )

    def leads_call(self, request: Request, _: re.Match[str]) -> Response:
        if len(request.target) > MAX_URL:
            return Response(
                414,
                b"<html><body>414 Request-URI Too Large</body></html>",
                {"Content-Type": "text/html"},
            )
        params = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST":
            if params.get("_method") != "GET":
                return self._refuse(
                    "609", "Invalid JSON (POST leads.json without _method=GET creates leads)"
                )
            params.update(request.form())
        token = request.header("authorization").removeprefix("Bearer ").strip()
        expires = self.tokens.get(token)
        if expires is None:
            return self._refuse("601", "Access token invalid")
        if expires <= time.time():
            return self._refuse("602", "Access token expired")
        now = request.received_at or time.time()
        with self.lock:
            if self.fail_next:
                code = self.fail_next.pop(0)
                return self._refuse(code, f"injected {code}")
            if len(self.call_times) >= self.daily_quota:
                return self._refuse("607", "Daily quota reached")
            recent = [t for t in self.call_times[-self.calls_per_window :] if t > now - self.window]
            if len(recent) >= self.calls_per_window:
                return self._refuse(
                    "606",
                    f"Max rate limit '{self.calls_per_window}' exceeded with in '{self.window:g}' secs",
                )
            if self.inflight >= self.concurrency:
                return self._refuse("615", "Concurrent access limit reached")
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.call_times.append(now)
        try:
            if self.latency:
                time.sleep(self.latency)
            return self._leads(params)
        finally:
            with self.lock:
                self.inflight -= 1

    def _leads(self, params: dict[str, str]) -> Response:
        field = params.get("filterType", "")
        if field not in (self.id_field, "id", "email"):
            return _fail("1003", f"Invalid filterType '{field}'")
        values = [v for v in params.get("filterValues", "").split(",") if v]
        if not values:
            return _fail("1003", "filterValues is required")
        if len(values) > 300:
            return _fail("1003", "Too many values in filterValues (max 300)")
        fields = [f for f in params.get("fields", "").split(",") if f] or ["id", "email"]
        matches = (
            [lead for v in values for lead in self.leads.get(v, [])]
            if field == self.id_field
            else []
        )
        size = min(int(params.get("batchSize") or 300), self.page_size)
        offset = (
            int(base64.b64decode(params["nextPageToken"]).decode())
            if params.get("nextPageToken")
            else 0
        )
        page = matches[offset : offset + size]
        body: dict[str, Any] = {
            "requestId": secrets.token_hex(4),
            "success": True,
            "result": [
                {"id": lead["id"], **{f: lead.get(f) for f in fields if f in lead}} for lead in page
            ],
            "moreResult": offset + size < len(matches),
        }
        if body["moreResult"]:
            body["nextPageToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return Response.json(body)

    def summary(self, _request: Request, _: re.Match[str]) -> Response:
        with self.lock:
            return Response.json(
                {
                    "calls": len(self.call_times),
                    "refused": self.refused,
                    "max_calls_in_window": self.max_calls_in_window(),
                    "max_inflight": self.max_inflight,
                }
            )
