"""IMS auth against the sandbox: OAuth Server-to-Server, service-account JWT, token reuse."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.auth import ImsTokens, signed_jwt
from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.errors import AdobeAuthError
from feedsync.errors import ConfigError
from feedsync.secret import Secret
from sandbox.run import Sandbox
from tests.adobe_helpers import session_for


def test_oauth_token_is_fetched_once_and_reused(sandbox: Sandbox) -> None:
    client = AnalyticsClient(session_for(sandbox))
    for _ in range(3):
        assert client.discovery()[0]["globalCompanyId"] == "acmeco0"
    assert sandbox.adobe.token_requests == 1
    sent = sandbox.server.requests_to("GET", r"^/discovery/me$")
    assert {r.header("x-api-key") for r in sent} == {"sandbox-client-id"}


def test_oauth_token_is_refreshed_shortly_before_expiry(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    now = [time.time()]
    session.tokens = ImsTokens(
        session.credentials, session.transport, session.endpoints.ims, clock=lambda: now[0]
    )
    first = session.tokens.token()
    expires = session.tokens.expires_at()
    assert expires is not None and 86_000 < expires - now[0] <= 86_400  # seconds, as IMS sends
    now[0] = expires - 3_600  # an hour left: still reused
    assert session.tokens.token() == first
    now[0] = expires - 60  # inside the refresh margin
    assert session.tokens.token() != first
    assert sandbox.adobe.token_requests == 2


def test_a_401_refreshes_the_token_once_and_retries(sandbox: Sandbox) -> None:
    client = AnalyticsClient(session_for(sandbox))
    client.discovery()
    sandbox.adobe.revoke_tokens()
    assert client.discovery()[0]["companyName"] == "Acme Co"
    assert sandbox.adobe.token_requests == 2


def test_a_second_401_is_a_clear_auth_error(sandbox: Sandbox) -> None:
    sandbox.server.inject(
        "GET",
        r"^/discovery/me$",
        "status",
        times=2,
        status=401,
        body={"error_code": "401013", "message": "Oauth token is not valid"},
    )
    with pytest.raises(AdobeAuthError) as caught:
        AnalyticsClient(session_for(sandbox)).discovery()
    assert caught.value.code == "401013"
    assert "still unauthorised after a token refresh" in str(caught.value)
    assert sandbox.adobe.token_requests == 2


def test_wrong_client_secret_is_invalid_client_without_the_secret(sandbox: Sandbox) -> None:
    wrong = "p8e-wrong-secret-value-123456"
    from tests.conftest import KNOWN_SECRETS

    KNOWN_SECRETS.add(wrong)
    with pytest.raises(AdobeAuthError) as caught:
        AnalyticsClient(session_for(sandbox, client_secret=wrong)).discovery()
    assert caught.value.code == "invalid_client"
    assert caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


def test_unknown_client_id_and_bad_scope_are_named(sandbox: Sandbox) -> None:
    with pytest.raises(AdobeAuthError, match="invalid_client"):
        AnalyticsClient(session_for(sandbox, client_id="nobody")).discovery()
    with pytest.raises(AdobeAuthError) as caught:
        AnalyticsClient(session_for(sandbox, scopes="openid,not_a_scope")).discovery()
    assert caught.value.code == "invalid_scope"
    assert "not_a_scope" in str(caught.value)


def _jwt_session(sandbox: Sandbox, private: str, **creds: str):  # type: ignore[no-untyped-def]
    return session_for(
        sandbox,
        auth="jwt",
        technical_account_id=sandbox.adobe.account.technical_account_id,
        private_key=private,
        **creds,
    )


def test_service_account_jwt_exchange_reads_expires_in_as_milliseconds(
    sandbox: Sandbox, rsa_key_pair: tuple[str, str]
) -> None:
    private, public = rsa_key_pair
    sandbox.adobe.account.public_key_pem = public
    session = _jwt_session(sandbox, private)
    assert AnalyticsClient(session).discovery()
    lifetime = (session.tokens.expires_at() or 0) - time.time()
    assert 86_000 < lifetime <= 86_400  # 86,399,000 ms, not 86 million seconds
    sent = sandbox.server.requests_to("POST", r"^/ims/exchange/jwt$")[0].form()
    claims = jwt.decode(
        sent["jwt_token"], public, algorithms=["RS256"], options={"verify_aud": False}
    )
    assert claims["iss"] == sandbox.adobe.account.org_id
    assert claims["sub"] == sandbox.adobe.account.technical_account_id
    assert claims["aud"] == f"{sandbox.url}/c/sandbox-client-id"
    assert claims[f"{sandbox.url}/s/ent_analytics_bulk_ingest_sdk"] is True
    assert 0 < claims["exp"] - time.time() <= 300


def test_jwt_signed_with_another_key_is_refused(
    sandbox: Sandbox, rsa_key_pair: tuple[str, str]
) -> None:
    _, public = rsa_key_pair
    sandbox.adobe.account.public_key_pem = public
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(AdobeAuthError) as caught:
        AnalyticsClient(_jwt_session(sandbox, other)).discovery()
    assert caught.value.code == "invalid_signature"
    assert "BEGIN" not in str(caught.value)


def test_jwt_with_wrong_issuer_audience_or_expiry_is_refused(
    sandbox: Sandbox, rsa_key_pair: tuple[str, str]
) -> None:
    private, public = rsa_key_pair
    sandbox.adobe.account.public_key_pem = public
    with pytest.raises(AdobeAuthError, match="issuer"):
        AnalyticsClient(_jwt_session(sandbox, private, org_id="OTHER@AdobeOrg")).discovery()
    creds = AdobeCredentials.from_mapping(
        {
            **{k[6:].lower(): v for k, v in sandbox.env().items() if k.startswith("ADOBE_")},
            "auth": "jwt",
            "technical_account_id": sandbox.adobe.account.technical_account_id,
            "private_key": private,
        },
        "test",
    )
    form = {"client_id": creds.client_id, "client_secret": creds.client_secret.reveal()}
    wrong_aud = signed_jwt(creds, "https://ims-na1.adobelogin.com", time.time())
    expired = signed_jwt(creds, sandbox.url, time.time() - 3_600)
    for token, expected in ((wrong_aud, "audience"), (expired, "expired")):
        answer = requests.post(
            f"{sandbox.url}/ims/exchange/jwt", data={**form, "jwt_token": token}, timeout=5
        )
        assert answer.status_code == 400
        assert expected in answer.json()["error_description"]


def test_bad_private_key_is_a_config_error_without_key_material(sandbox: Sandbox) -> None:
    junk = "-----BEGIN PRIVATE KEY-----\nAAAAnotakeyAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----"
    from tests.conftest import KNOWN_SECRETS

    KNOWN_SECRETS.add("AAAAnotakeyAAAAAAAAAAAAAAAA")
    with pytest.raises(ConfigError, match="not a PEM RSA private key") as caught:
        AnalyticsClient(_jwt_session(sandbox, junk)).discovery()
    assert "notakey" not in str(caught.value)


def test_credentials_accept_the_developer_console_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "console.json"
    export.write_text(
        '{"CLIENT_SECRETS": ["p8e-console-secret-abcdef"], "ORG_ID": "X@AdobeOrg",'
        ' "SCOPES": ["openid", "AdobeID"], "TECHNICAL_ACCOUNT_ID": "T@techacct.adobe.com",'
        ' "API_KEY": "console-client"}'
    )
    creds = AdobeCredentials.from_env({"ADOBE_CREDENTIALS_FILE": str(export)})
    assert creds.client_id == "console-client"
    assert creds.client_secret == Secret("p8e-console-secret-abcdef")
    assert creds.scopes == ("openid", "AdobeID")
    assert "p8e-console" not in repr(creds) and "p8e-console" not in f"{creds.client_secret}"


def test_missing_credentials_name_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="lack client_secret, org_id"):
        AdobeCredentials.from_env({"ADOBE_CLIENT_ID": "x"})
    with pytest.raises(ConfigError, match="technical_account_id, private_key"):
        AdobeCredentials.from_env(
            {
                "ADOBE_CLIENT_ID": "x",
                "ADOBE_CLIENT_SECRET": "y",
                "ADOBE_ORG_ID": "o",
                "ADOBE_AUTH": "jwt",
            }
        )
    with pytest.raises(ConfigError, match="auth='saml'"):
        AdobeCredentials.from_env(
            {
                "ADOBE_CLIENT_ID": "x",
                "ADOBE_CLIENT_SECRET": "y",
                "ADOBE_ORG_ID": "o",
                "ADOBE_AUTH": "saml",
            }
        )


def test_warm_invocations_share_a_live_token_per_credential(sandbox: Sandbox) -> None:
    first, second = session_for(sandbox), session_for(sandbox)  # two invocations, one process
    AnalyticsClient(first).discovery()
    AnalyticsClient(second).discovery()
    assert sandbox.adobe.token_requests == 1
    other = session_for(sandbox, scopes="openid,AdobeID")  # another credential: its own token
    AnalyticsClient(other).discovery()
    assert sandbox.adobe.token_requests == 2
    sandbox.adobe.revoke_tokens()  # a 401 drops the shared token for everyone
    AnalyticsClient(first).discovery()
    AnalyticsClient(second).discovery()
    assert sandbox.adobe.token_requests == 3
