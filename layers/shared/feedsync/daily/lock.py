"""One run per delivery at a time: a short lease in StateTable, renewed by a heartbeat.

The holder renews its lease every ``heartbeat`` seconds while it works, so a holder that dies
(a timeout, a SIGKILL) blocks the delivery for at most one ``lease``. ``break_lock`` takes over
a lock whose holder stopped renewing it; a live holder is never displaced.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from feedsync.state.ports import RunState
from feedsync.state.records import LockHolder

logger = logging.getLogger(__name__)


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


class RunLock:
    def __init__(
        self,
        runs: RunState,
        run: str,
        owner: str,
        lease: float = 60.0,
        heartbeat: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runs = runs
        self.run = run
        self.owner = owner
        self.lease = lease
        self.heartbeat = heartbeat
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()  # set when a renewal found another holder

    def acquire(self, break_lock: bool = False) -> bool:
        if self.runs.acquire(self.run, self.owner, self.lease):
            return True
        holder = self.runs.holder(self.run)
        if break_lock and holder is not None and self._gone(holder):
            logger.warning("taking over the lock of %s (%s)", self.run, self.describe(holder))
            return self.runs.acquire(self.run, self.owner, self.lease, force=True)
        return False

    def _gone(self, holder: LockHolder) -> bool:
        # alive holders renew every `heartbeat` seconds; allow one missed beat
        return self._clock() - holder.renewed_at > 2 * self.heartbeat

    def describe(self, holder: LockHolder | None = None) -> str:
        holder = holder or self.runs.holder(self.run)
        if holder is None:
            return "nobody holds the lock now"
        age = max(0.0, self._clock() - holder.renewed_at)
        return (
            f"held by {holder.owner} until {_when(holder.until)} (last heartbeat {age:.0f} s ago)"
        )

    def busy_message(self, break_lock: bool) -> str:
        holder = self.runs.holder(self.run)
        text = f"another invocation is enriching this delivery: {self.describe(holder)}"
        if break_lock and holder is not None and not self._gone(holder):
            return text + "; it is alive, so --break-lock leaves it"
        return text + "; if that holder is gone, run again with --break-lock"

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                if not self.runs.renew(self.run, self.owner, self.lease):
                    self.lost.set()
                    return
            except Exception:  # a missed beat is retried; the lease covers two of them
                logger.warning("could not renew the lock of %s", self.run, exc_info=True)

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="run-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.runs.release(self.run, self.owner)
