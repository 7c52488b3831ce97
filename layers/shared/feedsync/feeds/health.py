"""Adobe's side and ours, per report suite and period: what Adobe says it sent beside what the
parse step recorded, and the verdict a person acts on.

Ours: ``complete`` (verified), ``failed`` (MD5, size, record count or a missing file), ``arrived``
(files, not yet a closed delivery), ``missing`` (nothing). A period Adobe delivered but we do
not hold is ``missing`` only ``GRACE`` after Adobe's completion (files take a while to land).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from feedsync.feeds.requests import AdobeState, FeedRequest, parse_time
from feedsync.state.records import DeliveryRecord, Status

GRACE = dt.timedelta(hours=2)


class Ours:
    COMPLETE = "complete"
    FAILED = "failed"
    ARRIVED = "arrived"
    MISSING = "missing"


class Verdict:
    OK = "ok"  # delivered and verified
    NO_DATA = "no_data"  # Adobe had nothing to send
    PENDING = "pending"  # Adobe has not sent it yet, or it is on its way
    CORRUPT = "corrupt"  # arrived, failed verification: a resend is due
    MISSING = "missing"  # Adobe says sent, nothing arrived
    ADOBE_ERROR = "adobe_error"  # Adobe's request failed (its code and message)
    UNKNOWN = "unknown"  # Adobe's state is not one it documents
    NOT_LISTED = "not_listed"  # a delivery Adobe's request list does not show


PROBLEMS = (Verdict.CORRUPT, Verdict.MISSING, Verdict.ADOBE_ERROR, Verdict.UNKNOWN)


@dataclass
class FeedPeriod:
    rsid: str
    day: str
    hour: str | None
    request: FeedRequest | None
    ours: str
    delivery_key: str = ""
    reasons: list[str] = field(default_factory=list)
    closed_at: str = ""
    verdict: str = Verdict.PENDING
    resend: dict[str, Any] = field(default_factory=dict)  # filled by feeds/resend.py

    @property
    def period(self) -> str:
        return f"{self.day}-{self.hour}" if self.hour else self.day

    @property
    def problem(self) -> bool:
        return self.verdict in PROBLEMS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rsid": self.rsid,
            "period": self.period,
            "day": self.day,
            "hour": self.hour,
            "verdict": self.verdict,
            "ours": self.ours,
            "delivery": self.delivery_key or None,
            "reasons": list(self.reasons),
            "adobe": self.request.to_json() if self.request else None,
        }
        if self.resend:
            out["resend"] = self.resend
        return out


def ours_of(record: DeliveryRecord | None) -> str:
    if record is None:
        return Ours.MISSING
    if record.status is Status.COMPLETE:
        return Ours.COMPLETE
    if record.status is Status.FAILED:
        return Ours.FAILED
    return Ours.ARRIVED


def verdict_of(request: FeedRequest | None, ours: str, now: dt.datetime) -> str:
    if ours == Ours.FAILED:
        return Verdict.CORRUPT
    if request is None:
        return Verdict.OK if ours == Ours.COMPLETE else Verdict.NOT_LISTED
    if request.state is AdobeState.ERROR:
        return Verdict.OK if ours == Ours.COMPLETE else Verdict.ADOBE_ERROR
    if ours == Ours.COMPLETE:
        return Verdict.OK
    if request.state is AdobeState.UNKNOWN:
        return Verdict.UNKNOWN
    if request.state is AdobeState.NO_DATA:
        return Verdict.NO_DATA
    if request.state is AdobeState.DELIVERED and ours == Ours.MISSING:
        done = parse_time(request.complete_date)
        return Verdict.MISSING if done is None or now - done >= GRACE else Verdict.PENDING
    return Verdict.PENDING


def join(
    rsid: str,
    requests: list[FeedRequest],
    records: dict[tuple[str, str | None], DeliveryRecord],
    now: dt.datetime,
) -> list[FeedPeriod]:
    """One row per period either side knows of, newest first. Several requests for one period
    (a re-run Adobe lists apart): the latest request id speaks for it."""
    latest: dict[tuple[str, str | None], FeedRequest] = {}
    for request in requests:
        slot = (request.day, request.hour)
        if slot not in latest or request.request_id > latest[slot].request_id:
            latest[slot] = request
    rows = []
    for slot in sorted(set(latest) | set(records), reverse=True):
        record = records.get(slot)
        ours = ours_of(record)
        row = FeedPeriod(rsid, slot[0], slot[1], latest.get(slot), ours)
        if record is not None:
            row.delivery_key, row.reasons = record.key, list(record.reasons)
            row.closed_at = record.closed_at
        row.verdict = verdict_of(row.request, ours, now)
        rows.append(row)
    return rows
