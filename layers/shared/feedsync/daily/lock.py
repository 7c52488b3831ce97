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


def cli_owner() -> str:
    """A CLI run's lock owner: this machine and process, so a later run here can tell a run
    that was killed (its process is gone) from one still working."""
    import os
    import socket

    return f"cli-{socket.gethostname()}-{os.getpid()}"


def dead_local_run(owner: str) -> bool:
    """True when ``owner`` is a CLI run of this machine whose process no longer exists."""
    import os
    import socket

    prefix = f"cli-{socket.gethostname()}-"
    pid = owner[len(prefix) :] if owner.startswith(prefix) else ""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: is there such a process (nothing is sent)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


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
        # a CLI run on this machine whose process has ended is gone at once (killed, Ctrl-C
        # before it released); other holders renew every `heartbeat` seconds: one missed beat
        # is allowed
        return dead_local_run(holder.owner) or self._since(holder) > 2 * self.heartbeat

    def _since(self, holder: LockHolder) -> float:
        return max(0.0, self._clock() - holder.renewed_at)

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
            wait = 2 * self.heartbeat - self._since(holder)
            return text + (f"; it renewed its lease {self._since(holder):.0f} s ago, so "
                           "--break-lock leaves it (a holder that was killed stops renewing: "
                           f"--break-lock takes over in {max(wait, 1):.0f} s)")  # fmt: skip
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
