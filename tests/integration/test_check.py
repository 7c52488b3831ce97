"""`feedsync check` against a local stack (moto + the stand-ins): every check passes on a
ready installation, and each kind of failure is one line naming what to fix. The deployed
parse function is played by a thread that does what EventBridge and ParseFeedFunction do:
parse every manifest that lands under the feed bucket."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from feedsync.cli import main
from sandbox.adobe_feeds import FEED_ID
from sandbox.world import World

FEED = "feedsync-feed-check"


class DeployedParser:
    """EventBridge + ParseFeedFunction: each new object in the feed bucket is handled."""

    def __init__(self, world: World) -> None:
        from feedsync.aws.s3 import S3Store

        self.feed, self.state = S3Store(world.s3, FEED), world.state
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        from feedsync.parse.step import handle_feed_object
        from feedsync.settings import ParseSettings

        while not self.stop.wait(0.2):
            keys = sorted(self.feed.list(""), key=lambda k: k.endswith(".txt"))
            for key in keys:
                if key not in self.seen:
                    self.seen.add(key)
                    handle_feed_object(self.feed, self.state, key, ParseSettings())


@pytest.fixture
def ready(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=FEED)
    s3.put_bucket_notification_configuration(
        Bucket=FEED, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="feedsync-alerts")["TopicArn"]
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="feedsync-DeliveriesFailed", Namespace="feedsync",
        MetricName="DeliveriesFailed", Statistic="Sum", Period=3600, EvaluationPeriods=1,
        Threshold=0, ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
    )  # fmt: skip
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs",
                                 Endpoint="arn:aws:sqs:us-east-1:123456789012:ops")  # fmt: skip
    monkeypatch.setenv("FEED_BUCKET", FEED)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic)
    monkeypatch.setenv("DATA_SOURCE_IDS", "acmeprod=101")
    monkeypatch.setenv("DATA_FEED_IDS", f"acmeprod={FEED_ID}")
    world.box.feeds.add_request(dt.date.today().isoformat(), "processing")
    parser = DeployedParser(world)
    parser.thread.start()
    try:
        yield {"s3": s3, "sns": sns, "topic": topic, "subscription": subscription,
               "parser": parser, "world": world}  # fmt: skip
    finally:
        parser.stop.set()
        parser.thread.join(timeout=5)


def _check(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, str]]:
    code = main(["check", "--wait", "20", *extra])
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        if line.startswith(("ok  ", "FAIL")):
            name, _, detail = line[6:].partition(": ")
            lines[name] = ("ok " if line.startswith("ok") else "FAIL ") + detail
    return code, lines


def test_a_ready_stack_passes_every_check(
    ready: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _check(capsys)
    assert code == 0, "\n".join(f"{k}: {v}" for k, v in lines.items())
    assert len(lines) == 9 and all(v.startswith("ok") for v in lines.values()), lines
    assert "company acmeco0" in lines["Adobe credential"]
    assert f"feed {FEED_ID}, latest {dt.date.today()} processing" in lines["data feeds at Adobe"]
    assert "parsed by the deployed function" in lines["test delivery"]
    world = ready["world"]
    assert not [k for k in world.state.list("") if "feedsync-check" in k]  # removed again
    assert not list(ready["s3"].list_objects_v2(Bucket=FEED).get("Contents", []))


def test_each_kind_of_failure_is_one_line_naming_what_to_fix(
    ready: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ready["world"]
    ready["parser"].stop.set()  # the parse function is not triggered
    ready["s3"].put_bucket_notification_configuration(
        Bucket=FEED, NotificationConfiguration={}
    )  # notifications off
    ready["sns"].unsubscribe(SubscriptionArn=ready["subscription"]["SubscriptionArn"])
    monkeypatch.setenv("DATA_SOURCE_IDS", "acmeprod=999")  # no such data source
    monkeypatch.setenv("DATA_FEED_IDS", "acmeprod=999")  # no such feed
    world.s3.delete_object(Bucket=world.state.bucket, Key="config/mapping.json")
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    wrong = '{"client_id": "x", "client_secret": "wrong-one"}'
    secrets.put_secret_value(SecretId=world.env["MARKETO_SECRET_ARN"], SecretString=wrong)
    code, lines = _check(capsys, "--wait", "3")
    out = "\n".join(f"{k}: {v}" for k, v in lines.items())
    assert code == 1 and [k for k, v in lines.items() if v.startswith("ok")] == [
        "report suites", "Adobe credential"
    ], out  # fmt: skip
    assert "invalid_client" in lines["Marketo credential and field"] or "601" in out, out
    assert "wrong-one" not in out
    assert "no mapping file" in lines["mapping file"]
    assert "acmeprod has no data source 999" in lines["data source accounts"]
    assert "no data feed 999 of report suite acmeprod" in lines["data feeds at Adobe"]
    assert "DATA_FEED_IDS" in lines["data feeds at Adobe"]
    assert "does not send events to EventBridge" in lines["feed bucket notifications"]
    assert "nobody receives it" in lines["alarms reach a person"]
    assert "no delivery record" in lines["test delivery"]
    monkeypatch.setenv("ADOBE_SECRET_ARN", "feedsync/no-such-secret")
    code, lines = _check(capsys, "--no-test-delivery")
    assert code == 1 and "no such secret" in lines["Adobe credential"]
    assert "ADOBE_SECRET_ARN" in lines["Adobe credential"]
