"""Adobe IMS access tokens: OAuth Server-to-Server, and the legacy service-account JWT.

The service-account JWT credential is end of life at Adobe (no new ones since 2025-06-30, the
rest converted by March 2026); it stays for old set-ups and is imported only when used.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.errors import AdobeApiError, AdobeAuthError, error_from_response, json_body
from feedsync.errors import ConfigError
from feedsync.secret import Secret
from feedsync.tokens import AccessToken, TokenCache
from feedsync.transport import Transport

JWT_LIFETIME = 300  # seconds the signed assertion is valid; IMS only needs it for the exchange


def credential_key(credentials: AdobeCredentials, ims_url: str) -> str:
    material = "|".join(
        (
            ims_url,
            credentials.auth,
            credentials.client_id,
            credentials.client_secret.reveal(),
            credentials.org_id,
            ",".join(credentials.scopes),
            credentials.technical_account_id,
            credentials.private_key.reveal(),
        )
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _token_from(
    service: str,
    transport: Transport,
    url: str,
    data: dict[str, str],
    unit: float,
    clock: Callable[[], float],
) -> AccessToken:
    response = transport.send("POST", url, idempotent=True, data=data)
    if response.status_code >= 400:
        error = error_from_response(service, response)
        raise AdobeAuthError(
            service, error.detail, status=error.status, code=error.code, operation=error.operation
        )
    body = json_body(service, response)
    try:
        value = str(body["access_token"])
        expires_in = float(body["expires_in"]) * unit
    except (KeyError, TypeError, ValueError):
        raise AdobeApiError(
            service, "token response lacks access_token or expires_in", status=response.status_code
        ) from None
    return AccessToken(Secret(value), clock() + expires_in, expires_in)


def signed_jwt(credentials: AdobeCredentials, ims_url: str, now: float) -> str:
    """The RS256 assertion Adobe's service-account flow exchanges for an access token."""
    claims: dict[str, object] = {
        "exp": int(now) + JWT_LIFETIME,
        "iss": credentials.org_id,
        "sub": credentials.technical_account_id,
        "aud": f"{ims_url}/c/{credentials.client_id}",
    }
    for metascope in credentials.metascopes:
        name = metascope if metascope.startswith("http") else f"{ims_url}/s/{metascope}"
        claims[name] = True
    # Imported here: PyJWT loads cryptography (13 MB of native code); OAuth users never pay it.
    import jwt

    try:
        return jwt.encode(claims, credentials.private_key.reveal(), algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        # The library's message may quote the key material; keep only the kind of failure.
        raise ConfigError(
            "the Adobe private key (ADOBE_PRIVATE_KEY / ADOBE_PRIVATE_KEY_FILE) is not a PEM RSA "
            "private key"
        ) from None


def _ims_request(
    credentials: AdobeCredentials, ims_url: str, now: float
) -> tuple[str, dict[str, str], float]:
    """Path, form and the unit of ``expires_in`` (in seconds) of the credential's token request."""
    if credentials.auth == "jwt":  # the exchange answers expires_in in **milliseconds**
        form = {
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.reveal(),
            "jwt_token": signed_jwt(credentials, ims_url, now),
        }
        return "/ims/exchange/jwt", form, 0.001
    form = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret.reveal(),
        "scope": ",".join(credentials.scopes),
    }
    return "/ims/token/v3", form, 1.0


class ImsTokens(TokenCache):
    """Tokens from IMS: OAuth Server-to-Server (``/ims/token/v3``) or the service-account JWT
    exchange (``/ims/exchange/jwt``), by the credential's ``auth``."""

    def __init__(
        self,
        credentials: AdobeCredentials,
        transport: Transport,
        ims_url: str,
        clock: Callable[[], float] = time.time,
        shared_key: str | None = None,
    ) -> None:
        def fetch() -> AccessToken:
            path, form, unit = _ims_request(credentials, ims_url, clock())
            return _token_from("Adobe IMS", transport, ims_url + path, form, unit, clock)

        super().__init__(fetch, clock, shared_key)


def token_source(
    credentials: AdobeCredentials, transport: Transport, ims_url: str, share: bool = True
) -> TokenCache:
    """The credential's token cache; ``share`` lets warm invocations reuse a live token."""
    key = credential_key(credentials, ims_url) if share else None
    return ImsTokens(credentials, transport, ims_url, shared_key=key)
