"""Building real Adobe clients pointed at the sandbox."""

from __future__ import annotations

from typing import Any

from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.endpoints import AdobeEndpoints
from feedsync.adobe.session import AdobeSession
from feedsync.deadline import Deadline
from feedsync.transport import RetryPolicy, Transport
from sandbox.run import Sandbox


class Sleeps:
    """A sleep that records and only briefly really sleeps (keeps tests fast and honest)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.calls.append(seconds)
        time.sleep(min(seconds, 0.05))


def session_for(
    box: Sandbox,
    *,
    env: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    deadline: Deadline | None = None,
    read_timeout: float = 10.0,
    sleep: Any = None,
    **creds: str,
) -> AdobeSession:
    values = {**box.env(), **(env or {})}
    credentials = AdobeCredentials.from_mapping(
        {**{k[6:].lower(): v for k, v in values.items() if k.startswith("ADOBE_")}, **creds},
        "test",
    )
    transport = Transport(
        "Adobe",
        retry=retry or RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05),
        deadline=deadline,
        read_timeout=read_timeout,
        sleep=sleep or Sleeps(),
    )
    return AdobeSession(credentials, AdobeEndpoints.from_env(values), transport=transport)
