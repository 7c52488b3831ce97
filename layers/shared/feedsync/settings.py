"""What a daily run is asked to do (from a schedule, a backfill, a continuation or the CLI),
and the settings the parse step and the daily run work with (kept apart from the steps
themselves, so reading configuration does not load a step)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from feedsync.errors import FeedsyncError


@dataclass(frozen=True)
class ParseSettings:
    visitor_columns: tuple[str, ...] = ("mcvisid",)
    crm_id_column: str = "post_evar22"
    crm_id_columns: tuple[tuple[str, str], ...] = ()  # (rsid, column): CRM_ID_COLUMNS

    def for_rsid(self, rsid: str) -> ParseSettings:
        """The settings a report suite's deliveries are parsed with."""
        column = dict(self.crm_id_columns).get(rsid)
        return self if column is None else replace(self, crm_id_column=column)


@dataclass(frozen=True)
class EnrichSettings:
    batch_size: int = 15_000
    first_batch_seconds: float = 120.0  # time kept for a batch before any was measured
    max_continuations: int = 50
    lock_lease: float = 60.0  # a crashed holder blocks the delivery at most this long
    heartbeat: float = 20.0  # the holder renews its lease this often while it works
    settle_seconds: float = 600.0  # after a lost answer, look again this much later
    max_attempts: int = 3  # sends per visitor when Adobe fails a file
    stuck_after: float = 24 * 3600.0  # a job still processing after this is reported stuck
    reconcile: bool = True  # read Adobe's verdicts at the start of every run
    feed_encoding: str = "auto"  # how visitor ids' bytes read as text (datafeed.encoding)
    report_suites: tuple[str, ...] = ()  # only these are enriched; empty: every suite
    miss_ttl_days: int = 7  # a CRM miss is not looked up again this long (LedgerMissTtlDays)
    shard_visitors: int = 0  # a delivery gets one shard per this many pending (0: none)
    max_shards: int = 100  # at most this many shards a delivery
    shards: int = 0  # force this many shards on every new walk (``run-daily --shards N``)


def day_problem(raw: str) -> str:
    """Why ``raw`` is not a day: the form, or - in the right form - the calendar."""
    import calendar
    import re

    found = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", raw.strip())
    if not found:
        return "expected YYYY-MM-DD"
    year, month, day = (int(n) for n in found.groups())
    if not 1 <= month <= 12:
        return f"there is no month {month:02d}"
    last = calendar.monthrange(year, month)[1]
    return f"{calendar.month_name[month]} {year} has {last} days, not {day}"


def event_day(raw: Any, what: str = "date") -> dt.date | None:
    """A YYYY-MM-DD field of an event (a run's, a backfill item's); empty means none."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise FeedsyncError(f"{what} {raw!r}: {day_problem(str(raw))}") from None


def _flag(event: dict[str, Any], name: str, default: bool) -> bool:
    value = event.get(name, default)
    if not isinstance(value, bool):
        raise FeedsyncError(f"{name} {value!r}: expected true or false")
    return value


@dataclass(frozen=True)
class RunRequest:
    delivery: str | None = None  # "<folder><delivery id>", as under deliveries/ in the state bucket
    date: dt.date | None = None
    dry_run: bool = False
    continuation: int = 0
    run_id: str = ""  # dry runs: one id across continuations, so a new dry run starts afresh
    break_lock: bool = False  # take over a lock whose holder stopped renewing it
    shard: int | None = None  # one shard of a sharded delivery (daily/shards.py)

    @classmethod
    def from_event(cls, event: dict[str, Any], dry_run_default: bool = False) -> RunRequest:
        """A scheduled event (``scheduled_time``), a backfill (``delivery`` or ``date``, optional
        ``dry_run``) or a continuation (those plus ``continuation``/``run_id``). A stack deployed
        as a dry run stays one: ``dry_run: false`` in an event cannot turn it off."""
        if not isinstance(event, dict):
            raise FeedsyncError("the event must be a JSON object")
        delivery = event.get("delivery") or None
        if delivery and event.get("date"):
            raise FeedsyncError("name a delivery or a date, not both")
        continuation = event.get("continuation", 0)
        if not isinstance(continuation, int) or continuation < 0:
            raise FeedsyncError(f"continuation {continuation!r}: expected a count")
        shard = event.get("shard")
        if shard is not None and (not isinstance(shard, int) or shard < 0 or not delivery):
            raise FeedsyncError(f"shard {shard!r}: expected a shard number with a delivery")
        return cls(
            shard=shard,
            delivery=str(delivery) if delivery else None,
            date=event_day(event.get("date")),
            dry_run=_flag(event, "dry_run", dry_run_default) or dry_run_default,
            continuation=continuation,
            run_id=str(event.get("run_id") or ""),
            break_lock=_flag(event, "break_lock", False),
        )

    def event(self) -> dict[str, Any]:
        """The event that continues this request in a new invocation."""
        out: dict[str, Any] = {"continuation": self.continuation + 1, "dry_run": self.dry_run}
        if self.dry_run:
            out["run_id"] = self.run_id
        if self.delivery:
            out["delivery"] = self.delivery
        if self.date:
            out["date"] = self.date.isoformat()
        if self.shard is not None:
            out["shard"] = self.shard
        return out
