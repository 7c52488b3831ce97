"""A sliding-window call limit plus a concurrency limit, held across processes.

Marketo limits are per instance (100 calls / 20 s, 10 concurrent, shared by every integration),
so the limit must hold across concurrent Lambda invocations: ``aws.ratelimit`` keeps the state in
one DynamoDB item updated with optimistic locking. ``LocalRateLimiter`` applies the same rule in
one process.

Each call is stamped when it is allowed; a call is allowed when fewer than ``calls`` stamps fall
inside the last ``window`` seconds (+ ``margin`` for network latency) and fewer than
``concurrency`` leases are held.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

LEASE_SECONDS = 120.0  # a lease a crashed holder never released expires after this
POLL = 0.05


@dataclass
class LimitState:
    stamps: list[float] = field(default_factory=list)
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> expires at


@dataclass(frozen=True)
class Limits:
    calls: int = 50
    window: float = 20.0
    concurrency: int = 5
    margin: float = 0.5

    def __post_init__(self) -> None:
        if self.calls < 1 or self.concurrency < 1 or self.window <= 0:
            raise ValueError("rate limits must be positive")


def decide(state: LimitState, now: float, limits: Limits, lease: str) -> tuple[bool, float]:
    """Try to take a call slot: (taken, seconds to wait otherwise). Mutates ``state`` if taken."""
    horizon = now - limits.window - limits.margin
    state.stamps = [s for s in state.stamps if s > horizon]
    state.leases = {k: v for k, v in state.leases.items() if v > now}
    if len(state.stamps) >= limits.calls:
        return False, max(POLL, state.stamps[0] - horizon)
    if len(state.leases) >= limits.concurrency:
        return False, POLL
    state.stamps.append(now)
    state.leases[lease] = now + LEASE_SECONDS
    return True, 0.0


class RateLimiter(Protocol):
    def slot(self) -> Any:
        """Context manager: wait for a call slot, hold a concurrency lease while inside."""
        ...


class LocalRateLimiter:
    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._state = LimitState()

    @contextmanager
    def slot(self) -> Iterator[None]:
        lease = uuid.uuid4().hex
        while True:
            with self._lock:
                taken, wait = decide(self._state, self._clock(), self.limits, lease)
            if taken:
                break
            self._sleep(wait)
        try:
            yield
        finally:
            with self._lock:
                self._state.leases.pop(lease, None)
