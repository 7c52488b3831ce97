"""Authenticated calls to Adobe APIs: bearer token + API key, one refresh on 401."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from feedsync.adobe.auth import token_source
from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.endpoints import AdobeEndpoints
from feedsync.adobe.errors import AdobeAuthError, error_from_response
from feedsync.deadline import Deadline
from feedsync.tokens import TokenCache
from feedsync.transport import RetryPolicy, Transport


class AdobeSession:
    """What every Adobe client shares: credentials, endpoints, the token cache, the transport."""

    def __init__(
        self,
        credentials: AdobeCredentials,
        endpoints: AdobeEndpoints,
        *,
        transport: Transport | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.credentials = credentials
        self.endpoints = endpoints
        self.transport = transport or Transport("Adobe")
        self.tokens = tokens or token_source(credentials, self.transport, endpoints.ims)
        # told the HTTP status of every error Adobe answers (the AdobeApiErrors metric)
        self.on_error: Callable[[int], None] | None = None

    @classmethod
    def create(
        cls,
        credentials: AdobeCredentials,
        endpoints: AdobeEndpoints,
        *,
        deadline: Deadline | None = None,
        retry: RetryPolicy | None = None,
        read_timeout: float = 60.0,
    ) -> AdobeSession:
        transport = Transport("Adobe", deadline=deadline, retry=retry, read_timeout=read_timeout)
        return cls(credentials, endpoints, transport=transport)

    def request(
        self,
        service: str,
        method: str,
        url: str,
        *,
        idempotent: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with auth headers; raises AdobeApiError (typed) for any status >= 400.

        A 401 is never an accepted upload, so the one retry after a refresh is safe even for
        non-idempotent calls.
        """
        for attempt in (0, 1):
            token = self.tokens.token()
            sent = {
                "Authorization": f"Bearer {token.reveal()}",
                "x-api-key": self.credentials.client_id,
                **(headers or {}),
            }
            response = self.transport.send(
                method, url, idempotent=idempotent, headers=sent, **kwargs
            )
            if response.status_code >= 400 and self.on_error is not None:
                self.on_error(response.status_code)
            if response.status_code == 401 and attempt == 0:
                self.tokens.invalidate(token)
                continue
            if response.status_code == 401:
                error = error_from_response(service, response)
                raise AdobeAuthError(
                    service,
                    f"still unauthorised after a token refresh: {error.detail}",
                    status=401,
                    code=error.code,
                    operation=error.operation,
                )
            if response.status_code >= 400:
                raise error_from_response(service, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover
