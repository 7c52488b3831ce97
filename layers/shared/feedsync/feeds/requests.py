"""Adobe's data feed requests, read: which day (and hour) each covers, and what its state means.

A request's state comes from ``requestState``. The OpenAPI file names ``created``,
``processing`` and ``completed`` (the search filter), the guide's examples answer ``error`` with
``errorCode``/``errorMsg``, and the Data Feed UI's job states are "Waiting for Data", "Failed",
"Ready", "Processing", "Complete", "Waiting for Export" and "No Data" (analytics.en
``c-df-jobs/r-job-status.md``). Anything else is ``unknown``: reported as such, never taken for
a delivery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class AdobeState(StrEnum):
    DELIVERED = "delivered"  # Adobe created and sent the files
    PENDING = "pending"  # not yet: waiting for data or export, ready, processing
    NO_DATA = "no_data"  # nothing to send for the period
    ERROR = "error"  # Adobe's own failure (errorCode, errorMsg)
    UNKNOWN = "unknown"  # a state no Adobe document names


_STATES = {
    "completed": AdobeState.DELIVERED,
    "complete": AdobeState.DELIVERED,
    "created": AdobeState.PENDING,
    "processing": AdobeState.PENDING,
    "ready": AdobeState.PENDING,
    "waiting_for_data": AdobeState.PENDING,
    "waiting_for_export": AdobeState.PENDING,
    "no_data": AdobeState.NO_DATA,
    "error": AdobeState.ERROR,
    "failed": AdobeState.ERROR,
}


def state_of(raw: object) -> AdobeState:
    key = str(raw or "").strip().lower().replace(" ", "_").replace("-", "_")
    return _STATES.get(key, AdobeState.UNKNOWN)


def parse_time(text: object) -> dt.datetime | None:
    """Adobe's ISO 8601 times ("2026-11-20T07:00:00Z"); None when absent or unreadable."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _local(moment: dt.datetime, zone: str) -> dt.datetime:
    """``moment`` in the report suite's time zone (the feed's day is midnight to midnight
    there). Without tz data for ``zone``, noon-centred: a local midnight at any UTC offset
    from -12 to +12 hours falls on the right date when 12 hours are added."""
    try:
        from zoneinfo import ZoneInfo

        return moment.astimezone(ZoneInfo(zone))
    except Exception:  # unknown zone, no tz database: the offset-free estimate below
        return moment + dt.timedelta(hours=12)


@dataclass(frozen=True)
class FeedRequest:
    """One request as Adobe lists it (DataFeedRequestView), with its period read."""

    rsid: str
    feed_id: int
    request_id: int
    raw_state: str
    state: AdobeState
    day: str  # YYYY-mm-dd in the report suite's time zone
    hour: str | None  # HHMMSS for an hourly feed's request
    run_count: int
    run_attempt: str
    complete_date: str
    error_code: str
    error_msg: str

    @classmethod
    def from_adobe(cls, data: dict[str, Any]) -> FeedRequest | None:
        begin, end = (
            parse_time(data.get("requestPeriodBegin")),
            parse_time(data.get("requestPeriodEnd")),
        )
        if begin is None or data.get("requestId") is None:
            return None
        zone = str(data.get("timezone") or "UTC")
        local = _local(begin, zone) if not data.get("useUTC") else begin
        hourly = end is not None and (end - begin) <= dt.timedelta(hours=1)
        return cls(
            rsid=str(data.get("rsid") or ""),
            feed_id=int(data.get("feedId") or 0),
            request_id=int(data["requestId"]),
            raw_state=str(data.get("requestState") or ""),
            state=state_of(data.get("requestState")),
            day=local.date().isoformat(),
            hour=local.strftime("%H0000") if hourly else None,
            run_count=int(data.get("runCount") or 0),
            run_attempt=str(data.get("runAttempt") or ""),
            complete_date=str(data.get("completeDate") or ""),
            error_code="" if data.get("errorCode") in (None, "") else str(data.get("errorCode")),
            error_msg=str(data.get("errorMsg") or ""),
        )

    @property
    def period(self) -> str:
        return f"{self.day}-{self.hour}" if self.hour else self.day

    @property
    def reason(self) -> str:
        """Adobe's own words for an error: "300 Delivery Error"."""
        return " ".join(p for p in (self.error_code, self.error_msg) if p) or self.raw_state

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "feed_id": self.feed_id,
            "adobe_state": self.raw_state,
            "state": str(self.state),
            "run_count": self.run_count,
            "run_attempt": self.run_attempt,
            "complete_date": self.complete_date,
            "error_code": self.error_code,
            "error_msg": self.error_msg,
        }
