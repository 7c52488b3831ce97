"""Service URLs from settings: https, or plain http to a loopback host only (the local
stand-ins) - an override can never send credentials in clear text across a network."""

from __future__ import annotations

from urllib.parse import urlsplit

from feedsync.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def service_url(name: str, value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"{name}={value!r}: expected an https:// URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigError(f"{name}={value!r}: plain http is accepted for a loopback host only")
    return value.strip().rstrip("/")
