"""Access tokens cached until shortly before they expire, shared by every API client.

One ``TokenCache`` per credential: the token is reused until shortly before it expires, refreshed
by one thread while the others wait, and dropped when an API answers 401. Adobe IMS, the Target
profile API token and Marketo's identity token all go through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from feedsync.secret import Secret


@dataclass(frozen=True)
class AccessToken:
    value: Secret
    expires_at: float  # epoch seconds
    lifetime: float  # seconds it was issued for

    def fresh(self, now: float, margin: float) -> bool:
        return now + margin < self.expires_at


# Tokens outlive one Lambda invocation (IMS: ~24 h): warm invocations with the same credential
# share them through this process-wide store, keyed by a digest of the credential.
_SHARED: dict[str, AccessToken] = {}
_SHARED_LOCK = threading.Lock()


class TokenCache:
    """Thread-safe cache around a fetch function; refreshes ``margin`` early (10% or 5 min)."""

    def __init__(
        self,
        fetch: Callable[[], AccessToken],
        clock: Callable[[], float] = time.time,
        shared_key: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._shared_key = shared_key

    @staticmethod
    def _margin(token: AccessToken) -> float:
        return min(300.0, max(5.0, token.lifetime * 0.1))

    def token(self) -> Secret:
        with self._lock:
            current = self._token
            if current is None and self._shared_key is not None:
                with _SHARED_LOCK:
                    current = _SHARED.get(self._shared_key)
            if current is None or not current.fresh(self._clock(), self._margin(current)):
                current = self._fetch()
                if self._shared_key is not None:
                    with _SHARED_LOCK:
                        _SHARED[self._shared_key] = current
            self._token = current
            return current.value

    def expires_at(self) -> float | None:
        return None if self._token is None else self._token.expires_at

    def invalidate(self, token: Secret) -> None:
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None
            if self._shared_key is not None:
                with _SHARED_LOCK:
                    shared = _SHARED.get(self._shared_key)
                    if shared is not None and shared.value == token:
                        del _SHARED[self._shared_key]
