"""Progress on a terminal: one counting line on stderr, rewritten in place; silent when stderr
is not a TTY or with --quiet, so scripts and logs see only results."""

from __future__ import annotations

import sys
import time

_enabled = False
_shown = False


def configure(quiet: bool) -> None:
    global _enabled
    _enabled = not quiet and sys.stderr.isatty()


def show(text: str) -> None:
    global _shown
    if _enabled and sys.stderr.isatty():  # stderr may be redirected after configure()
        sys.stderr.write("\r\033[K" + text)  # back to the line start, clear it
        sys.stderr.flush()
        _shown = True


def done() -> None:
    global _shown
    if _enabled and _shown:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _shown = False


class Ticker:
    """``elapsed`` seconds since it started, for polling loops."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
