"""Feed health from Adobe's side, through the EnrichUploadFunction handler and the CLI, against
moto (S3, DynamoDB, SNS, SQS) and the Data Feed stand-in (sandbox/adobe_feeds.py).

A week's history: a verified day, a day Adobe says it sent that never arrived, a day that
arrived corrupt, and a day Adobe's own request failed ("300 Delivery Error"). The daily run
says what each is, alarms with Adobe's words, asks Adobe to resend (capped) and the re-delivery
is enriched exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from feedsync.cli import main
from sandbox.adobe_feeds import FEED_ID
from sandbox.run import Sandbox
from sandbox.world import World
from tests.faults.harness import _hits

TODAY = dt.date.today()
DAYS = [(TODAY - dt.timedelta(days=n)).isoformat() for n in (4, 3, 2, 1)]
GOOD, MISSING, CORRUPT, FAILED = DAYS
LONG_AGO = "2020-01-01T00:00:00Z"  # Adobe finished long before: past the grace period


@pytest.fixture
def installation(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="feedsync-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs",
                      Endpoint=queue_arn["Attributes"]["QueueArn"])  # fmt: skip
        env = {"DATA_FEED_IDS": f"acmeprod={FEED_ID}", "ALERT_TOPIC_ARN": topic,
               "FEED_RESEND_MAX": "1", "ADOBE_SETTLE_SECONDS": "0"}  # fmt: skip
        world = World(sandbox, tmp_path, env=env)
        for name, value in world.env.items():
            monkeypatch.setenv(name, value)
        yield world, sqs, queue


def _alerts(sqs: Any, queue: str) -> list[dict[str, Any]]:
    found = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return found
        for message in got:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def _history(world: World, sandbox: Sandbox) -> dict[str, Any]:
    """The week: one visitor in four of each day is in Marketo."""
    rng = random.Random(11)
    feeds = sandbox.feeds
    days = {day: [_hits(rng, 60, 10 + i), _hits(rng, 60, 20 + i)] for i, day in enumerate(DAYS)}
    requests = {
        GOOD: feeds.add_request(GOOD, completed_at=LONG_AGO),
        MISSING: feeds.add_request(MISSING, completed_at=LONG_AGO),
        CORRUPT: feeds.add_request(CORRUPT, completed_at=LONG_AGO),
        FAILED: feeds.add_request(FAILED, "error", error=(300, "Delivery Error")),
    }
    world.deliver_to_bucket(days[GOOD], GOOD)
    world.deliver_to_bucket(days[CORRUPT], CORRUPT, corrupt=True)
    for day in (GOOD, CORRUPT, FAILED):
        visitors = [h.visitor for files in days[day] for h in files]
        world.add_leads(sorted(set(visitors))[::4])

    def adobe_sends(request: dict[str, Any]) -> None:
        day = next(d for d, r in requests.items() if r["requestId"] == request["requestId"])
        if day in (CORRUPT, FAILED):
            world.deliver_to_bucket(days[day], day)  # the resent files are whole

    feeds.on_delivery = adobe_sends
    return requests


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_feed_health_resends_a_bad_day_once_and_alarms_in_adobes_words(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    world, sqs, queue = installation
    requests = _history(world, sandbox)

    # `feedsync feeds status` before any run: each day as Adobe and we see it (exit 1)
    code, out, _ = _cli(capsys, "feeds", "status", "--days", "7")
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines() if line[:4].isdigit()}
    assert "delivered, verified" in lines[GOOD]
    assert "MISSING" in lines[MISSING] and "completed" in lines[MISSING]
    assert "FAILED verification" in lines[CORRUPT] and "failed" in lines[CORRUPT]
    assert "FAILED at Adobe" in lines[FAILED] and "300 Delivery Error" in lines[FAILED]
    assert sandbox.feeds.asked == []  # status only reads

    # the daily run: resends asked (resend for the corrupt and missing days, redo for the day
    # Adobe failed), the alarm carries Adobe's own code and message
    summary = world.invoke({})
    assert summary["feeds"]["resends_asked"] == {
        "acmeprod": sorted([FAILED, CORRUPT, MISSING], reverse=True)
    }
    asked = {rid: action for action, rid in sandbox.feeds.asked}
    assert asked == {requests[MISSING]["requestId"]: "resend",
                     requests[CORRUPT]["requestId"]: "resend",
                     requests[FAILED]["requestId"]: "redo"}  # fmt: skip
    alerts = _alerts(sqs, queue)
    assert len(alerts) == 1
    assert "300 Delivery Error" in alerts[0]["Message"]
    assert FAILED in alerts[0]["Subject"] and "asked Adobe to redo" in alerts[0]["Message"]

    # a second run before Adobe acts: nothing asked again (pending), no second alert
    summary = world.invoke({})
    assert len(sandbox.feeds.asked) == 3
    assert _alerts(sqs, queue) == []

    # Adobe sends the corrupt and the failed day again (the missing one stays missing)
    assert sandbox.feeds.deliver_resent() == 3
    summary = world.invoke({})
    keys = {d["key"]: d["status"] for d in summary["deliveries"]}
    assert keys[f"adobe/acmeprod/acmeprod_{CORRUPT}"] == "complete"
    assert keys[f"adobe/acmeprod/acmeprod_{FAILED}"] == "complete"
    for day in (CORRUPT, FAILED, GOOD):
        report = world.report(f"adobe/acmeprod/acmeprod_{day}")
        assert report["uploaded_rows"] == report["matched"] > 0
    # each matched visitor of each day exactly once at Adobe
    rows = world.uploaded_rows()
    visitors = [r[1] for r in rows]
    assert len(visitors) == len(set(visitors))

    # the cap: the missing day (resent, still missing after Adobe completed) is not asked again
    # (hours later: Adobe's re-run completed 4 h ago, past the 2 h grace, and nothing came)
    now = dt.datetime.now(dt.UTC)
    request = sandbox.feeds.requests[requests[MISSING]["requestId"]]
    request["completeDate"] = (now - dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = f"feeds/acmeprod/{FEED_ID}/{request['requestId']}.json"
    record = json.loads(world.state.get(key) or b"{}")
    record["resends"][-1]["at"] = (now - dt.timedelta(hours=5)).isoformat(timespec="seconds")
    world.state.put(key, json.dumps(record).encode())
    world.invoke({})
    assert len(sandbox.feeds.asked) == 3
    code, out, _ = _cli(capsys, "feeds", "status")
    assert code == 1  # still missing, and said so
    missing = next(line for line in out.splitlines() if line.startswith(MISSING))
    assert "1/1" in missing and "cap reached" in missing
    for day in (CORRUPT, FAILED):
        line = next(line for line in out.splitlines() if line.startswith(day))
        assert "delivered, verified" in line

    # the status page and the report show Adobe's side
    report = world.report(f"adobe/acmeprod/acmeprod_{CORRUPT}")
    assert report["feed"]["resend"]["count"] == 1
    assert report["feed"]["verdict"] == "ok"


def test_a_lost_answer_to_resend_is_looked_up_not_asked_again(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    world, _sqs, _queue = installation
    rng = random.Random(3)
    sandbox.feeds.add_request(CORRUPT, completed_at=LONG_AGO)
    world.deliver_to_bucket([_hits(rng, 40, 10)], CORRUPT, corrupt=True)
    sandbox.server.inject("PUT", r"/resend$", "lose-response")
    world.invoke({})
    assert len(sandbox.feeds.asked) == 1  # Adobe took it; the answer was lost
    world.invoke({})
    assert len(sandbox.feeds.asked) == 1  # runCount went up: confirmed, not asked again
    code, out, _ = _cli(capsys, "feeds", "resend", f"acmeprod_{CORRUPT}", "--dry-run")
    assert code == 0 and "nothing asked" in out and "waiting for the delivery" in out


def test_resend_refused_falls_back_to_redo_and_by_hand_with_a_dry_run(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    world, _sqs, _queue = installation
    rng = random.Random(4)
    request = sandbox.feeds.add_request(CORRUPT, completed_at=LONG_AGO)
    sandbox.feeds.uncache(request["requestId"])  # the files are gone: resend is refused
    world.deliver_to_bucket([_hits(rng, 40, 10)], CORRUPT, corrupt=True)
    code, out, _ = _cli(capsys, "feeds", "resend", f"acmeprod_{CORRUPT}", "--dry-run")
    assert code == 0 and "would ask Adobe to resend" in out
    assert sandbox.feeds.asked == []
    code, out, _ = _cli(capsys, "feeds", "resend", f"adobe/acmeprod/acmeprod_{CORRUPT}")
    assert code == 0 and "asked Adobe to redo" in out, out
    assert sandbox.feeds.asked == [("redo", request["requestId"])]
    code, out, err = _cli(capsys, "feeds", "resend", "not-a-delivery")
    assert code == 2 and "is not a delivery" in err


def test_unknown_adobe_state_is_reported_never_taken_as_sent(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    world, sqs, queue = installation
    sandbox.feeds.add_request(GOOD, "paused_by_gremlins")
    code, out, _ = _cli(capsys, "feeds", "status", "--json")
    row = json.loads(out)["suites"]["acmeprod"]["rows"][0]
    assert code == 1 and row["verdict"] == "unknown"
    world.invoke({})
    alerts = _alerts(sqs, queue)
    assert len(alerts) == 1 and "paused_by_gremlins" in alerts[0]["Message"]


def test_delivery_role_arn_comes_from_cloud_locations(
    installation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, "adobe", "delivery-role-arn", "--json")
    assert code == 0
    assert json.loads(out)["userARN"].startswith("arn:aws:iam::")


def test_feeds_status_without_feed_ids_says_what_to_set(
    installation: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATA_FEED_IDS")
    code, _, err = _cli(capsys, "feeds", "status")
    assert code == 2 and "DATA_FEED_IDS is not set" in err


def test_a_resend_adobe_fails_in_the_same_second_is_asked_again_up_to_the_cap(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27 (9): Adobe stamps runAttempt/completeDate to the second; a resend whose new run
    starts and fails in the very second it was asked used to look "not later than the ask"
    and stayed pending for ever. runCount says Adobe ran it."""
    world, _sqs, _queue = installation
    world.env["FEED_RESEND_MAX"] = "2"
    request = sandbox.feeds.add_request(FAILED, "error", error=(300, "Delivery Error"),
                                        completed_at=LONG_AGO)  # fmt: skip
    world.invoke({})
    assert sandbox.feeds.asked == [("redo", request["requestId"])]
    assert sandbox.feeds.fail_resent() == 1  # failed again, stamped in the same second
    world.invoke({})
    assert sandbox.feeds.asked == [("redo", request["requestId"])] * 2  # asked again
    sandbox.feeds.fail_resent()
    world.invoke({})
    assert len(sandbox.feeds.asked) == 2  # the cap (FEED_RESEND_MAX=2)
    code, out, _ = _cli(capsys, "feeds", "status")
    line = next(line for line in out.splitlines() if line.startswith(FAILED))
    assert code == 1 and "cap reached" in line and "waiting for the delivery" not in line


def test_a_window_without_requests_is_not_an_unknown_feed(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27 (10): data-feeds.json answers 404 "Datafeed requests not found." for an empty
    window as for an unknown feed; the feed itself (get_1) tells them apart."""
    world, sqs, queue = installation
    _, out, err = _cli(capsys, "feeds", "status", "--json")
    assert "knows no data feed" not in out + err
    summary = world.invoke({})
    assert not (summary.get("feeds") or {}).get("errors")
    assert _alerts(sqs, queue) == []
    sandbox.feeds.feeds.clear()  # now Adobe really does not know the feed
    code, out, err = _cli(capsys, "feeds", "status")
    assert code == 1 and "Adobe knows no data feed" in out + err


def test_delivery_role_arn_refused_to_a_server_to_server_credential_says_what_to_do(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.feeds.arn_needs_user_token = True
    code, _, err = _cli(capsys, "adobe", "delivery-role-arn")
    assert code == 1 and "x-user-auth" in err and "AdobeUserArn" in err
    assert len(err.strip().splitlines()) == 1


def test_a_day_adobe_does_not_list_says_so_in_feeds_status(
    installation: Any, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    world, _, _ = installation
    rng = random.Random(3)
    world.deliver_to_bucket([_hits(rng, 40, 5)], GOOD)  # files arrived; Adobe lists no request
    _, out, _ = _cli(capsys, "feeds", "status", "--days", "7")
    line = next(ln for ln in out.splitlines() if ln.startswith(GOOD))
    assert "not listed by Adobe" in line, out
