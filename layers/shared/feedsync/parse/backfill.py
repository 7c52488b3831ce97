"""Backfill: the parse step over feed objects already in the bucket (history), in two phases.

Phase ``data`` parses every data file, phase ``manifest`` then closes every delivery - the same
``handle_feed_object`` the S3 trigger calls, so results are identical and a second backfill
changes nothing. In AWS the BackfillStateMachine (a Step Functions Distributed Map over the S3
listing) sends each object to ParseFeedFunction as a ``backfill`` item; locally (``feedsync
backfill --local``) a thread pool does the same work. An optional day range narrows it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from feedsync.datafeed.naming import FileKind, parse_feed_name
from feedsync.errors import FeedNameError, FeedsyncError
from feedsync.parse.step import handle_feed_object
from feedsync.settings import ParseSettings, event_day
from feedsync.state.records import Status
from feedsync.storage import ObjectStore, put_json

logger = logging.getLogger(__name__)

PHASES = ("data", "manifest")
BACKFILLS = "backfills/"
_PHASE_KINDS = {"data": (FileKind.DATA,), "manifest": (FileKind.MANIFEST,)}


@dataclass(frozen=True)
class BackfillItem:
    """One object of a backfill, as the state machine hands it to ParseFeedFunction."""

    bucket: str
    key: str
    phase: str
    since: dt.date | None = None
    until: dt.date | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> BackfillItem:
        item = event.get("backfill")
        if not isinstance(item, dict) or not item.get("bucket") or not item.get("key"):
            raise FeedsyncError("a backfill item needs bucket and key")
        phase = str(item.get("phase", ""))
        if phase not in PHASES:
            raise FeedsyncError(f"backfill phase {phase!r}: expected data or manifest")
        since, until = (event_day(item.get(k), "backfill date") for k in ("from", "to"))
        return cls(str(item["bucket"]), str(item["key"]), phase, since, until)

    def wanted(self) -> bool:
        return wanted(self.key, self.phase, self.since, self.until)


def wanted(key: str, phase: str, since: dt.date | None, until: dt.date | None) -> bool:
    """Whether this phase handles the object: its kind, and its delivery day in range."""
    try:
        found = parse_feed_name(key.rsplit("/", 1)[-1])
    except FeedNameError:
        return False
    day = found.delivery.day
    in_range = (since is None or day >= since) and (until is None or day <= until)
    return found.kind in _PHASE_KINDS[phase] and in_range


@dataclass
class Progress:
    id: str
    prefix: str
    started_at: str
    mode: str = "local"
    since: str | None = None
    until: str | None = None
    listed: int = 0
    done: dict[str, int] = field(default_factory=lambda: {p: 0 for p in PHASES})
    failed: dict[str, int] = field(default_factory=lambda: {p: 0 for p in PHASES})
    phase: str = "data"
    finished_at: str | None = None
    errors: list[str] = field(default_factory=list)
    execution_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def record_progress(state: ObjectStore, progress: Progress) -> None:
    put_json(state, f"{BACKFILLS}{progress.id}.json", progress.to_json())


class LocalBackfill:
    """``feedsync backfill --local``: both phases in this process, with a thread pool."""

    def __init__(
        self,
        feed: ObjectStore,
        state: ObjectStore,
        settings: ParseSettings,
        workers: int = 8,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.feed, self.state, self.settings, self.workers = feed, state, settings, workers
        self.on_progress = on_progress
        self._lock = threading.Lock()

    def run(self, prefix: str, since: dt.date | None, until: dt.date | None) -> Progress:
        progress = Progress(f"local-{time.strftime('%Y%m%dT%H%M%S')}", prefix, _now())
        progress.since = since.isoformat() if since else None
        progress.until = until.isoformat() if until else None
        keys = list(self.feed.list(prefix))
        progress.listed = len(keys)
        for phase in PHASES:
            progress.phase = phase
            chosen = [k for k in keys if wanted(k, phase, since, until)]
            self._phase(chosen, phase, progress)
        progress.finished_at = _now()
        record_progress(self.state, progress)
        return progress

    def _phase(self, keys: Iterable[str], phase: str, progress: Progress) -> None:
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="backfill") as pool:
            for key, outcome in zip(keys, pool.map(self._one, keys), strict=False):
                with self._lock:
                    if outcome is None:
                        progress.done[phase] += 1
                    else:
                        progress.failed[phase] += 1
                        progress.errors.append(f"{key}: {outcome}")
                    if (progress.done[phase] + progress.failed[phase]) % 50 == 0:
                        record_progress(self.state, progress)
                    if self.on_progress is not None:
                        self.on_progress(progress)

    def _one(self, key: str) -> str | None:
        """The same call the S3 trigger makes; a failure is counted, never raised."""
        try:
            outcome = handle_feed_object(self.feed, self.state, key, self.settings)
        except FeedsyncError as exc:
            return str(exc)
        if outcome.status is Status.FAILED:
            reasons = getattr(outcome, "reasons", None) or [getattr(outcome, "error", "failed")]
            return "; ".join(str(r) for r in reasons)
        return None


def state_machine_input(
    bucket: str, prefix: str, since: dt.date | None, until: dt.date | None
) -> str:
    return json.dumps({"bucket": bucket, "prefix": prefix,
                       "from": since.isoformat() if since else None,
                       "to": until.isoformat() if until else None})  # fmt: skip


def latest(state: ObjectStore, limit: int = 3) -> Iterator[dict[str, Any]]:
    from feedsync.storage import get_json

    for key in sorted(state.list(BACKFILLS), reverse=True)[:limit]:
        found = get_json(state, key)
        if found is not None:
            yield found
