"""Adobe credentials from the environment, a credentials file or a Secrets Manager secret.

Accepted keys (any one spelling per value):
- ours / the environment: ``client_id``, ``client_secret``, ``org_id``, ``scopes``, ``auth``,
  ``technical_account_id``, ``private_key`` / ``private_key_file``, ``metascopes``
  (``ADOBE_`` + upper case in the environment);
- the Adobe Developer Console's OAuth Server-to-Server export: ``CLIENT_ID``/``API_KEY``,
  ``CLIENT_SECRETS`` (a list), ``ORG_ID``, ``SCOPES`` (a list), ``TECHNICAL_ACCOUNT_ID``;
- older JWT project configs: ``tech_id``/``technical_account_id``, ``secret``, ``pathToKey``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedsync.errors import ConfigError
from feedsync.secret import Secret

AUTH_METHODS = ("oauth", "jwt")
DEFAULT_OAUTH_SCOPES = (
    "openid",
    "AdobeID",
    "read_organizations",
    "additional_info.projectedProductContext",
)
DEFAULT_METASCOPES = ("ent_analytics_bulk_ingest_sdk",)

_ALIASES: dict[str, tuple[str, ...]] = {
    "client_id": ("client_id", "CLIENT_ID", "API_KEY", "api_key", "clientId"),
    "client_secret": ("client_secret", "CLIENT_SECRET", "CLIENT_SECRETS", "secret", "clientSecret"),
    "org_id": ("org_id", "ORG_ID", "orgId", "ims_org_id"),
    "scopes": ("scopes", "SCOPES", "scope"),
    "auth": ("auth", "AUTH", "auth_method"),
    "technical_account_id": (
        "technical_account_id",
        "TECHNICAL_ACCOUNT_ID",
        "tech_id",
        "technicalAccountId",
    ),
    "private_key": ("private_key", "PRIVATE_KEY", "privateKey"),
    "private_key_file": ("private_key_file", "PRIVATE_KEY_FILE", "pathToKey"),
    "metascopes": ("metascopes", "METASCOPES"),
}


def _first(data: Mapping[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        value = data.get(alias)
        if value not in (None, "", []):
            return value
    return None


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.replace(" ", ",").split(",") if v.strip())
    return tuple(str(v).strip() for v in value if str(v).strip())


@dataclass(frozen=True)
class AdobeCredentials:
    client_id: str
    client_secret: Secret = field(repr=False)
    org_id: str
    scopes: tuple[str, ...] = DEFAULT_OAUTH_SCOPES
    auth: str = "oauth"
    technical_account_id: str = ""
    private_key: Secret = field(default_factory=lambda: Secret(""), repr=False)
    metascopes: tuple[str, ...] = DEFAULT_METASCOPES

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> AdobeCredentials:
        """Build from any accepted spelling; ``source`` names where the values came from."""
        secret = _first(data, "client_secret")
        if isinstance(secret, list):  # the Developer Console exports a list of secrets
            secret = secret[0] if secret else None
        auth = str(_first(data, "auth") or "oauth").strip().lower()
        if auth not in AUTH_METHODS:
            raise ConfigError(f"{source}: auth={auth!r}; expected 'oauth' or 'jwt'")
        missing = [
            name
            for name, value in (
                ("client_id", _first(data, "client_id")),
                ("client_secret", secret),
                ("org_id", _first(data, "org_id")),
            )
            if not value
        ]
        key = _first(data, "private_key")
        key_file = _first(data, "private_key_file")
        if auth == "jwt":
            if not _first(data, "technical_account_id"):
                missing.append("technical_account_id")
            if not key and not key_file:
                missing.append("private_key or private_key_file")
        if missing:
            raise ConfigError(f"{source}: Adobe credentials lack {', '.join(missing)}")
        if not key and key_file:
            path = Path(str(key_file)).expanduser()
            try:
                key = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"{source}: cannot read the private key file {path}: {exc.strerror}"
                ) from None
        scopes = _as_list(_first(data, "scopes")) or DEFAULT_OAUTH_SCOPES
        metascopes = _as_list(_first(data, "metascopes")) or DEFAULT_METASCOPES
        return cls(
            client_id=str(_first(data, "client_id")).strip(),
            client_secret=Secret(str(secret).strip()),
            org_id=str(_first(data, "org_id")).strip(),
            scopes=scopes,
            auth=auth,
            technical_account_id=str(_first(data, "technical_account_id") or "").strip(),
            private_key=Secret(str(key or "").replace("\\n", "\n")),
            metascopes=metascopes,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AdobeCredentials:
        """``ADOBE_CREDENTIALS_FILE`` (a JSON file) first, then the ``ADOBE_*`` variables."""
        path = env.get("ADOBE_CREDENTIALS_FILE", "").strip()
        if path:
            return cls.from_file(Path(path))
        data = {
            key[len("ADOBE_") :].lower(): value
            for key, value in env.items()
            if key.startswith("ADOBE_") and value.strip()
        }
        return cls.from_mapping(data, "ADOBE_* environment variables")

    @classmethod
    def from_file(cls, path: Path) -> AdobeCredentials:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"ADOBE_CREDENTIALS_FILE={path}: {exc.strerror}") from None
        except ValueError:
            raise ConfigError(f"ADOBE_CREDENTIALS_FILE={path}: not valid JSON") from None
        if not isinstance(data, dict):
            raise ConfigError(f"ADOBE_CREDENTIALS_FILE={path}: expected a JSON object")
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_secret_string(cls, text: str, secret_id: str) -> AdobeCredentials:
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"secret {secret_id}: not a JSON object") from None
        if not isinstance(data, dict):
            raise ConfigError(f"secret {secret_id}: not a JSON object")
        return cls.from_mapping(data, f"secret {secret_id}")
