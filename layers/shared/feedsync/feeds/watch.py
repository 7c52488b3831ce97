"""Feed health, as the daily run (and ``feedsync feeds status``) sees it: for each report suite
with a feed id, Adobe's requests of the last days joined with the deliveries that arrived;
resends asked where a day is corrupt, missing or failed at Adobe; an alert with Adobe's own
error code and message for a request Adobe failed or a state it does not document. The last
look is kept (feeds/snapshot.py): the status page and the reports read it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feedsync import metrics
from feedsync.adobe.datafeeds import DataFeedClient
from feedsync.datafeed.naming import parse_feed_name
from feedsync.errors import FeedNameError, FeedsyncError
from feedsync.feeds.health import FeedPeriod, Verdict, join
from feedsync.feeds.requests import FeedRequest
from feedsync.feeds.resend import Resender
from feedsync.parse.results import load_record
from feedsync.state.layout import DELIVERIES, StateLayout
from feedsync.state.records import DeliveryRecord
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)
Alert = Callable[[str, str], None]  # subject, message


def _no_metric(name: str, value: float) -> None:
    return None


def records_of(
    state: ObjectStore, rsid: str, since: str
) -> dict[tuple[str, str | None], DeliveryRecord]:
    """The suite's delivery records from ``since`` (YYYY-mm-dd) on, by (day, hour)."""
    out: dict[tuple[str, str | None], DeliveryRecord] = {}
    for key in StateLayout.keys_of_records(state.list(DELIVERIES)):
        try:
            name = parse_feed_name(key.rsplit("/", 1)[-1] + ".txt").delivery
        except FeedNameError:
            continue
        day = name.day.isoformat()
        if name.rsid != rsid or day < since:
            continue
        record = load_record(state, key)
        if record is not None:
            out[(day, name.hour)] = record
    return out


@dataclass
class FeedWatch:
    state: ObjectStore
    client: DataFeedClient
    feed_ids: dict[str, int]
    cap: int = 1
    days: int = 7
    alert: Alert | None = None
    metric: Callable[[str, float], None] = _no_metric

    def look(self, now: dt.datetime, act: bool = True) -> dict[str, Any]:
        """Every suite: rows (newest first), resends asked (when ``act``), problems, errors."""
        since = (now - dt.timedelta(days=self.days)).date()
        resender = Resender(self.state, self.client if act else None, self.cap, now)
        out: dict[str, Any] = {"checked_at": now.isoformat(timespec="seconds"),
                               "days": self.days, "suites": {}, "errors": []}  # fmt: skip
        for rsid, feed_id in sorted(self.feed_ids.items()):
            try:
                rows = self.suite(rsid, feed_id, since, now)
            except (FeedsyncError, OSError, ValueError) as exc:
                out["errors"].append(f"{rsid}: Adobe's feed requests could not be read: {exc}")
                continue
            asked = [r.period for r in rows if self._act(resender, r, act)]
            self._alerts(resender, rsid, rows, act)
            out["suites"][rsid] = {
                "feed_id": feed_id,
                "rows": [r.to_json() for r in rows],
                "resends_asked": asked,
                "problems": sum(1 for r in rows if r.problem),
            }
        return out

    def suite(self, rsid: str, feed_id: int, since: dt.date, now: dt.datetime) -> list[FeedPeriod]:
        start = dt.datetime.combine(since, dt.time(), dt.UTC) - dt.timedelta(days=1)
        answers = self.client.requests(rsid, feed_id, start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        requests = [r for r in map(FeedRequest.from_adobe, answers) if r is not None]
        requests = [r for r in requests if r.day >= since.isoformat()]
        return join(rsid, requests, records_of(self.state, rsid, since.isoformat()), now)

    def _act(self, resender: Resender, row: FeedPeriod, act: bool) -> bool:
        decision = resender.consider(row, dry_run=not act)
        if act and decision.action is not None:
            self.metric(metrics.FEED_RESENDS_REQUESTED, 1)
            logger.warning("asked Adobe to %s %s %s (%s)", decision.action, row.rsid,
                           row.period, decision.why)  # fmt: skip
            return True
        return False

    def _alerts(self, resender: Resender, rsid: str, rows: list[FeedPeriod], act: bool) -> None:
        counts = {
            metrics.FEED_REQUESTS_FAILED: Verdict.ADOBE_ERROR,
            metrics.FEED_DELIVERIES_MISSING: Verdict.MISSING,
            metrics.FEED_DELIVERIES_CORRUPT: Verdict.CORRUPT,
            metrics.FEED_STATES_UNKNOWN: Verdict.UNKNOWN,
        }
        for name, verdict in counts.items():
            found = sum(1 for r in rows if r.verdict == verdict)
            if found and act:
                self.metric(name, found)
        for row in rows:
            if act and row.request is not None and row.verdict in (Verdict.ADOBE_ERROR,
                                                                   Verdict.UNKNOWN):  # fmt: skip
                self._alert_once(resender, rsid, row, row.request)

    def _alert_once(
        self, resender: Resender, rsid: str, row: FeedPeriod, request: FeedRequest
    ) -> None:
        """One message per request and state (not one per run while it lasts); the record is
        the one the resend decision just read."""
        record = resender.record(rsid, request)
        said = f"{request.raw_state}:{request.run_count}:{request.error_code}"
        if record.get("alerted") == said:
            return
        if row.verdict == Verdict.ADOBE_ERROR:
            subject = f"feedsync: Adobe failed the data feed of {rsid} for {row.period}"
            what = f"Adobe reports data feed request {request.request_id} failed: {request.reason}"
        else:
            subject = f"feedsync: Adobe's data feed request for {rsid} {row.period} is unknown"
            what = (f"Adobe answers request {request.request_id} with the state "
                    f"'{request.raw_state}', which no Adobe document names; "
                    "not taken as sent")  # fmt: skip
        message = f"{what}. feed {request.feed_id}, run {request.run_count}. " + _next_step(row)
        if self.alert is not None:
            self.alert(subject[:100], message)
        logger.error("%s", message)
        record["alerted"] = said
        resender.save(record)


def _next_step(row: FeedPeriod) -> str:
    resend = row.resend or {}
    if resend.get("next") in ("resend", "redo"):
        return f"feedsync asked Adobe to {resend['next']} it."
    return f"Resend: {resend.get('next', 'see feedsync feeds status')}."
