"""How much of this invocation is left: every remote call and every batch asks first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Deadline:
    """Seconds left in this invocation, minus a reserve kept for saving state."""

    def __init__(
        self,
        remaining: Callable[[], float] | None = None,
        reserve: float = 0.0,
    ) -> None:
        self._remaining = remaining
        self.reserve = reserve

    @classmethod
    def after(cls, seconds: float, reserve: float = 0.0) -> Deadline:
        end = time.monotonic() + seconds
        return cls(lambda: end - time.monotonic(), reserve)

    @classmethod
    def from_lambda_context(cls, context: Any, reserve: float = 30.0) -> Deadline:
        return cls(lambda: context.get_remaining_time_in_millis() / 1000.0, reserve)

    def remaining(self) -> float:
        if self._remaining is None:
            return float("inf")
        return self._remaining() - self.reserve

    def allows(self, seconds: float) -> bool:
        return self.remaining() >= seconds
