"""Service URLs from settings: https, or plain http to a loopback host only (the local
stand-ins) - an override can never send credentials in clear text across a network."""

from __future__ import annotations

from urllib.parse import urlsplit

from feedsync.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def redacted(value: str) -> str:
    """The URL as it may be shown: a user name or password in it replaced by ``***``."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return "(an unreadable URL)"
    if parts.username is None and parts.password is None:
        return value.strip()
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def service_url(name: str, value: str) -> str:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: not a URL; expected https://HOST") from None
    shown = redacted(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"{name}={shown!r}: expected an https:// URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigError(f"{name}={shown!r}: plain http is accepted for a loopback host only")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{name}={shown!r}: no user name or password in the URL (credentials "
                          "belong in the secret)")  # fmt: skip
    return value.strip().rstrip("/")
