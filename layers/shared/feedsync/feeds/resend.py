"""Asking Adobe to send a day again: capped, recorded before it is asked, never twice by accident.

Each request's resends live in one record (``feeds/<rsid>/<feed id>/<request id>.json``), the
one truth status, the report and the cap read. An attempt is written as ``asking`` *before* the
PUT: a run killed between the two, or an answer lost on the way, leaves ``asking``, and the next
run looks the request up instead of asking again blindly - Adobe counted the run (``runCount``
went up, a new ``runAttempt``, the request is processing) or it did not (then the same attempt
is made again, not counted twice). A resend is *pending* until the period's delivery arrives
again, or Adobe ends the new run in an error, or Adobe completes it and nothing arrives within
the grace period; no new resend is asked while one is pending, and never more than
``FeedResendMax`` per request.

Which call: a completed request whose files failed our checks or never arrived -> ``resend``
(Adobe still caches the files); Adobe refuses (the files are gone) -> ``redo`` in the same
attempt. A request Adobe failed itself -> ``redo`` (resend is not possible for a failed job:
analytics.en ``t-job-rerun.md``; redo "first checks if a resend is possible, if not, it
reprocesses the request": static/data-feeds.json ``redoDatafeed_1``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from feedsync.adobe.datafeeds import DataFeedClient
from feedsync.errors import ApiError, OutcomeUnknownError
from feedsync.feeds.health import GRACE, FeedPeriod, Verdict
from feedsync.feeds.requests import AdobeState, FeedRequest, parse_time
from feedsync.storage import ObjectStore, get_json, put_json

ASKING, ASKED, REFUSED, DROPPED = "asking", "asked", "refused", "dropped"


def record_key(rsid: str, feed_id: int, request_id: int) -> str:
    return f"feeds/{rsid}/{feed_id}/{request_id}.json"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _after(text: str, moment: dt.datetime) -> bool:
    value = parse_time(text)
    return value is not None and value > moment


@dataclass
class Decision:
    action: str | None  # resend, redo, or None: nothing to ask now
    why: str
    again: bool = False  # the same (unconfirmed) attempt is made again: not counted anew


def wanted(row: FeedPeriod, by_hand: bool = False) -> str | None:
    """The call a period's state asks for, before the cap and pending rules (a person may ask
    for any period Adobe finished, a verified one too)."""
    request = row.request
    bad = row.verdict in (Verdict.CORRUPT, Verdict.MISSING, Verdict.ADOBE_ERROR)
    if request is None or not (bad or by_hand):
        return None
    if request.state is AdobeState.ERROR:
        return "redo"
    if request.state is AdobeState.DELIVERED:
        return "resend"
    return None  # Adobe is still at it: nothing to resend yet


def _confirmed(last: dict[str, Any], request: FeedRequest) -> bool:
    """Did Adobe take the attempt whose answer we never read?"""
    at = parse_time(last["at"])
    assert at is not None
    return (
        request.run_count > int(last.get("run_count_before", 0))
        or request.state is AdobeState.PENDING
        or _after(request.run_attempt, at)
    )


def _pending(last: dict[str, Any], row: FeedPeriod, now: dt.datetime) -> bool:
    """A resend Adobe took and that has not played out yet. Whether Adobe ran it again is read
    from ``runCount`` (it went up since the ask), not from times: Adobe stamps ``runAttempt``
    and ``completeDate`` to the second, so a run started in the very second it was asked for
    looks no later than the ask."""
    at = parse_time(last["at"])
    assert at is not None and row.request is not None
    request = row.request
    if _after(row.closed_at, at):
        return False  # the day arrived again (verified or not: the verdict says)
    ran = request.run_count > int(last.get("run_count_before", 0))
    if request.state is AdobeState.ERROR and (
        ran or _after(request.run_attempt or request.complete_date, at)
    ):
        return False  # Adobe ran it and failed it: the decision below may ask again
    done = parse_time(request.complete_date)
    if request.state is AdobeState.DELIVERED and (ran or (done is not None and done > at)):
        return now - max(done or at, at) < GRACE  # the files are on their way
    return True


def decide(
    row: FeedPeriod, record: dict[str, Any], cap: int, now: dt.datetime, by_hand: bool = False
) -> Decision:
    action = wanted(row, by_hand)
    resends = record.get("resends", [])
    if resends and row.request is not None:
        last = resends[-1]
        if last["outcome"] == ASKING:
            if _confirmed(last, row.request):
                last["outcome"] = ASKED
                last["confirmed_by"] = "Adobe's request shows the new run"
            elif action is not None:
                return Decision(last["action"], "the last attempt was never confirmed", again=True)
            else:
                last["outcome"] = DROPPED  # never taken, and the day needs it no more
        if last["outcome"] == ASKED and _pending(last, row, now):
            return Decision(None, f"resend asked {last['at']}: waiting for the delivery")
    if action is None or row.request is None:
        return Decision(None, "nothing to resend")
    if len(resends) >= cap:
        return Decision(None, f"resend cap reached ({len(resends)} of FeedResendMax={cap})")
    return Decision(action, row.verdict)


class Resender:
    """Decide and ask for every period that needs it; each attempt recorded before the call."""

    def __init__(
        self, state: ObjectStore, client: DataFeedClient | None, cap: int, now: dt.datetime
    ) -> None:
        self.state, self.client, self.cap, self.now = state, client, cap, now
        self._records: dict[str, dict[str, Any]] = {}  # read once per run, shared with alerts
        self._saved: dict[str, str] = {}  # key -> the JSON last read or written

    def record(self, rsid: str, request: FeedRequest) -> dict[str, Any]:
        key = record_key(rsid, request.feed_id, request.request_id)
        if key not in self._records:
            found = get_json(self.state, key)
            self._saved[key] = json.dumps(found, sort_keys=True) if found else ""
            self._records[key] = found or {
                "rsid": rsid, "feed_id": request.feed_id, "request_id": request.request_id,
                "resends": [],
            }  # fmt: skip
        return self._records[key]

    def save(self, record: dict[str, Any]) -> None:
        """Writes the record when it changed since it was read (most runs change nothing)."""
        key = record_key(record["rsid"], record["feed_id"], record["request_id"])
        text = json.dumps(record, sort_keys=True)
        if self._saved.get(key) != text:
            put_json(self.state, key, record)
            self._saved[key] = text

    def consider(self, row: FeedPeriod, dry_run: bool = False, force: bool = False) -> Decision:
        """Decide for ``row``; ask unless ``dry_run``. ``force``: a person asked (any finished
        period; the cap does not apply, a pending resend still does)."""
        if row.request is None:
            return Decision(None, "Adobe lists no request for this period")
        record = self.record(row.rsid, row.request)
        decision = decide(row, record, 10**6 if force else self.cap, self.now, by_hand=force)
        row.resend = self._summary(record, decision)
        if decision.action is None or dry_run or self.client is None:
            if not dry_run and record.get("resends"):
                self.save(record)  # a confirmation found on the way is kept
            return decision
        self._ask(record, row.request, decision)
        row.resend = self._summary(record, decision)
        return decision

    def _ask(self, record: dict[str, Any], request: FeedRequest, decision: Decision) -> None:
        assert self.client is not None and decision.action is not None
        if decision.again:
            attempt = record["resends"][-1]
        else:
            attempt = {
                "action": decision.action, "at": _iso(self.now), "outcome": ASKING,
                "run_count_before": request.run_count, "why": decision.why,
            }  # fmt: skip
            record["resends"].append(attempt)
        self.save(record)  # the intent first: a kill from here on cannot ask twice
        try:
            self.client.ask(attempt["action"], request.feed_id, request.request_id)
        except OutcomeUnknownError:
            return  # the next run looks the request up
        except ApiError as exc:
            if attempt["action"] == "resend" and exc.status == 400:
                attempt["refused_resend"] = exc.detail
                attempt["action"] = "redo"  # the cached files are gone: reprocess
                self.save(record)
                try:
                    self.client.ask("redo", request.feed_id, request.request_id)
                except OutcomeUnknownError:
                    return
                except ApiError as again:
                    self._refused(record, attempt, again)
                    return
            elif exc.status is not None and 400 <= exc.status < 500:
                self._refused(record, attempt, exc)
                return
            else:
                return  # 5xx after the transport's retries: unknown, looked up next run
        attempt["outcome"] = ASKED
        self.save(record)

    def _refused(self, record: dict[str, Any], attempt: dict[str, Any], exc: ApiError) -> None:
        attempt["outcome"], attempt["message"] = REFUSED, str(exc)
        self.save(record)

    def _summary(self, record: dict[str, Any], decision: Decision) -> dict[str, Any]:
        return {
            "count": len(record.get("resends", [])),
            "cap": self.cap,
            "last": (record.get("resends") or [None])[-1],
            "next": decision.action or decision.why,
        }
