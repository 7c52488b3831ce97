"""Adobe's data feed requests read: the day a request covers in its report suite's time zone,
what each documented state means, and the resend rules (cap, pending, an unconfirmed attempt)."""

from __future__ import annotations

import datetime as dt

import pytest

from feedsync.feeds.health import GRACE, FeedPeriod, Ours, Verdict, join, verdict_of
from feedsync.feeds.requests import AdobeState, FeedRequest, state_of
from feedsync.feeds.resend import ASKED, ASKING, decide

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def _request(**fields: object) -> FeedRequest:
    data = {
        "rsid": "acmeprod", "feedId": 16756, "requestId": 20055556, "runCount": 1,
        "requestPeriodBegin": "2026-11-20T07:00:00Z", "requestPeriodEnd": "2026-11-21T07:00:00Z",
        "requestState": "completed", "completeDate": "2026-11-21T09:00:00Z",
        "runAttempt": "2026-11-21T08:00:00Z", "timezone": "US/Mountain", **fields,
    }  # fmt: skip
    request = FeedRequest.from_adobe(data)
    assert request is not None
    return request


@pytest.mark.parametrize(
    ("begin", "end", "zone", "day", "hour"),
    [
        ("2026-11-20T07:00:00Z", "2026-11-21T07:00:00Z", "US/Mountain", "2026-11-20", None),
        ("2026-11-19T15:00:00Z", "2026-11-20T15:00:00Z", "Asia/Tokyo", "2026-11-20", None),
        ("2026-02-25T21:00:00Z", "2026-02-25T22:00:00Z", "US/Mountain", "2026-02-25", "140000"),
        ("2026-11-19T15:00:00Z", "2026-11-20T15:00:00Z", "No/SuchZone", "2026-11-20", None),
    ],
)
def test_a_request_covers_its_day_in_the_suites_time_zone(
    begin: str, end: str, zone: str, day: str, hour: str | None
) -> None:
    request = _request(requestPeriodBegin=begin, requestPeriodEnd=end, timezone=zone)
    assert (request.day, request.hour) == (day, hour)


def test_every_documented_state_is_read_and_any_other_is_unknown() -> None:
    expected = {
        "completed": AdobeState.DELIVERED, "Complete": AdobeState.DELIVERED,
        "created": AdobeState.PENDING, "processing": AdobeState.PENDING,
        "Waiting for Data": AdobeState.PENDING, "Waiting for Export": AdobeState.PENDING,
        "Ready": AdobeState.PENDING, "No Data": AdobeState.NO_DATA,
        "error": AdobeState.ERROR, "Failed": AdobeState.ERROR,
        "success": AdobeState.UNKNOWN, "": AdobeState.UNKNOWN,
    }  # fmt: skip
    assert {raw: state_of(raw) for raw in expected} == expected


def test_verdicts_say_what_a_person_does_next() -> None:
    done = _request()
    assert verdict_of(done, Ours.COMPLETE, NOW) == Verdict.OK
    assert verdict_of(done, Ours.FAILED, NOW) == Verdict.CORRUPT
    assert verdict_of(done, Ours.MISSING, NOW) == Verdict.MISSING
    fresh = _request(completeDate=(NOW - GRACE / 2).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert verdict_of(fresh, Ours.MISSING, NOW) == Verdict.PENDING  # files still landing
    assert verdict_of(_request(requestState="error"), Ours.MISSING, NOW) == Verdict.ADOBE_ERROR
    assert verdict_of(_request(requestState="weird"), Ours.MISSING, NOW) == Verdict.UNKNOWN
    assert verdict_of(_request(requestState="No Data"), Ours.MISSING, NOW) == Verdict.NO_DATA
    assert verdict_of(None, Ours.ARRIVED, NOW) == Verdict.NOT_LISTED


def test_the_latest_request_of_a_period_speaks_for_it() -> None:
    old, new = _request(requestState="error"), _request(requestId=20055999)
    rows = join("acmeprod", [new, old], {}, NOW)
    assert len(rows) == 1 and rows[0].request == new


def _row(request: FeedRequest, verdict: str, closed_at: str = "") -> FeedPeriod:
    return FeedPeriod("acmeprod", request.day, None, request, Ours.FAILED, closed_at=closed_at,
                      verdict=verdict)  # fmt: skip


def test_resends_are_capped_and_never_asked_while_one_is_pending() -> None:
    request = _request()
    row = _row(request, Verdict.CORRUPT)
    assert decide(row, {"resends": []}, 1, NOW).action == "resend"
    assert (
        decide(_row(_request(requestState="error"), Verdict.ADOBE_ERROR), {}, 1, NOW).action
        == "redo"
    )
    at = (NOW - dt.timedelta(hours=1)).isoformat()
    asked = {"resends": [{"action": "resend", "at": at, "outcome": ASKED, "run_count_before": 1}]}
    assert "waiting for the delivery" in decide(row, asked, 3, NOW).why  # pending
    later = (NOW - dt.timedelta(minutes=5)).isoformat()
    arrived = _row(request, Verdict.CORRUPT, closed_at=later)  # the resent day failed again
    assert decide(arrived, asked, 3, NOW).action == "resend"
    assert "cap reached" in decide(arrived, asked, 1, NOW).why
    assert decide(_row(request, Verdict.OK), {"resends": []}, 1, NOW).action is None


def test_an_unconfirmed_attempt_is_made_again_not_counted_twice() -> None:
    at = (NOW - dt.timedelta(hours=1)).isoformat()
    record = {"resends": [{"action": "resend", "at": at, "outcome": ASKING, "run_count_before": 1}]}
    again = decide(_row(_request(), Verdict.CORRUPT), record, 1, NOW)
    assert again.action == "resend" and again.again  # Adobe shows no new run: never taken
    taken = _row(_request(runCount=2, requestState="processing"), Verdict.CORRUPT)
    assert decide(taken, record, 1, NOW).action is None
    assert record["resends"][-1]["outcome"] == ASKED  # confirmed by Adobe's own figures
