"""ParseFeedFunction through its handler, against moto S3, with the events/ files."""

from __future__ import annotations

import copy
import importlib
import json
import random
import sys
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from feedsync.parse.step import DeliveryFailed
from sandbox import feedgen
from sandbox.lambda_context import FakeLambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
FEED, STATE = "feedsync-feed-test", "feedsync-state-test"
FOLDER = "adobe/acme prod/"  # a space: S3 sends it URL-encoded as '+'


def Context() -> FakeLambdaContext:
    return FakeLambdaContext("ParseFeedFunction")


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("STATE_BUCKET", STATE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "feedsync")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "feedsync")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=FEED)
        s3.create_bucket(Bucket=STATE)
        sys.modules.pop("parse_feed", None)
        handler = importlib.import_module("parse_feed")
        yield s3, handler


def event_for(name: str) -> dict:
    template = "s3-put-manifest.json" if name.endswith(".txt") else "s3-put-datafile.json"
    event = json.loads((EVENTS / template).read_text())
    record = copy.deepcopy(event["Records"][0])
    record["s3"]["bucket"]["name"] = FEED
    record["s3"]["object"]["key"] = quote_plus(FOLDER + name, safe="/")
    return {"Records": [record]}


def upload(s3, delivery, names=None):
    for name, body in delivery.files.items():
        if names is None or name in names:
            s3.put_object(Bucket=FEED, Key=FOLDER + name, Body=body)


def record_of(s3, delivery):
    key = f"deliveries/{FOLDER}{delivery.rsid}_{delivery.day}.json"
    return json.loads(s3.get_object(Bucket=STATE, Key=key)["Body"].read())


def make(tmp_path, seed=5):
    rng = random.Random(seed)
    files = [feedgen.random_hits(800, rng, 200) for _ in range(3)]
    return feedgen.make_delivery(tmp_path, files, write=False)


def data_names(delivery):
    return sorted(n for n in delivery.files if n.endswith(".tsv.gz"))


def test_events_in_delivery_order(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    upload(s3, delivery)
    for name in data_names(delivery):
        out = handler.lambda_handler(event_for(name), Context())
        assert out["results"][0]["status"] == "parsed"
    out = handler.lambda_handler(event_for(delivery.manifest_name), Context())
    assert out["results"][0]["status"] == "complete"
    record = record_of(s3, delivery)
    assert record["visitors_pending"] == len(delivery.expected.final_pending)
    assert record["rows"] == delivery.expected.rows
    assert not any(f.get("parsed_now") for f in record["files"])


def test_lost_and_late_events_are_covered_by_the_manifest(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    upload(s3, delivery)
    # only one data file event arrives, and after the manifest
    handler.lambda_handler(event_for(delivery.manifest_name), Context())
    first = record_of(s3, delivery)
    late = handler.lambda_handler(event_for(data_names(delivery)[0]), Context())
    assert late["results"][0]["status"] == "parsed"
    assert first["complete"] and sum(f.get("parsed_now", False) for f in first["files"]) == 3
    assert first["visitors_pending"] == len(delivery.expected.final_pending)


def test_data_file_before_lookup_archive_is_deferred(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    name = data_names(delivery)[0]
    upload(s3, delivery, names={name})
    out = handler.lambda_handler(event_for(name), Context())
    assert out["results"][0]["status"] == "deferred"
    upload(s3, delivery)
    handler.lambda_handler(event_for(delivery.manifest_name), Context())
    assert record_of(s3, delivery)["complete"]


def test_duplicated_and_reordered_events_give_the_same_record(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    upload(s3, delivery)
    names = data_names(delivery)
    handler.lambda_handler(event_for(delivery.manifest_name), Context())
    once = record_of(s3, delivery)
    for name in [names[2], names[0], names[2], delivery.manifest_name, names[1]]:
        handler.lambda_handler(event_for(name), Context())
    handler.lambda_handler(event_for(delivery.manifest_name), Context())
    again = record_of(s3, delivery)
    for key in ("rows", "counted_rows", "visitors_pending", "visitors_known", "status"):
        assert once[key] == again[key]


def test_redelivered_file_replaces_its_result(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path, seed=5)
    upload(s3, delivery)
    handler.lambda_handler(event_for(delivery.manifest_name), Context())
    # Adobe re-runs the feed: same keys, new content
    rerun = make(tmp_path, seed=6)
    upload(s3, rerun)
    for name in data_names(rerun):
        handler.lambda_handler(event_for(name), Context())
    handler.lambda_handler(event_for(rerun.manifest_name), Context())
    record = record_of(s3, rerun)
    assert record["visitors_pending"] == len(rerun.expected.final_pending)
    assert record["rows"] == rerun.expected.rows


def test_digest_mismatch_fails_loudly_and_is_recorded(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    name = data_names(delivery)[1]
    other = make(tmp_path, seed=9)
    delivery.files[name] = other.files[name]  # valid rows, but not what the manifest lists
    upload(s3, delivery)
    with pytest.raises(DeliveryFailed, match=f"{name}: File-Size check failed"):
        handler.lambda_handler(event_for(delivery.manifest_name), Context())
    record = record_of(s3, delivery)
    assert record["status"] == "failed" and record["complete"] is False
    assert any(name in reason for reason in record["reasons"])


def test_corrupt_data_file_event_records_the_failure(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    name = data_names(delivery)[0]
    delivery.files[name] = delivery.files[name][:-64]
    upload(s3, delivery)
    out = handler.lambda_handler(event_for(name), Context())
    assert out["results"][0]["status"] == "failed"
    summary_key = f"results/{FOLDER}{delivery.rsid}_{delivery.day}/{name}.json"
    summary = json.loads(s3.get_object(Bucket=STATE, Key=summary_key)["Body"].read())
    assert "truncated gzip" in summary["error"]
    with pytest.raises(DeliveryFailed, match="truncated gzip"):
        handler.lambda_handler(event_for(delivery.manifest_name), Context())


def test_other_objects_are_ignored_with_a_reason(aws):
    s3, handler = aws
    s3.put_object(Bucket=FEED, Key=FOLDER + "README.txt", Body=b"hello")
    out = handler.lambda_handler(event_for("README.txt"), Context())
    assert out["results"][0]["status"] == "ignored"
    assert "not a data feed file name" in out["results"][0]["reason"]


def test_eventbridge_shape_is_accepted(aws, tmp_path):
    s3, handler = aws
    delivery = make(tmp_path)
    upload(s3, delivery)
    event = json.loads((EVENTS / "eventbridge-object-created.json").read_text())
    event["detail"]["bucket"]["name"] = FEED
    assert event["detail"]["object"]["key"] == "adobe/acmeprod/" + delivery.manifest_name
    event["detail"]["object"]["key"] = FOLDER + delivery.manifest_name  # EventBridge: not encoded
    assert handler.lambda_handler(event, Context())["results"][0]["status"] == "complete"


def test_missing_setting_fails_at_cold_start_naming_it(monkeypatch):
    monkeypatch.delenv("STATE_BUCKET", raising=False)
    sys.modules.pop("parse_feed", None)
    with pytest.raises(Exception, match="STATE_BUCKET is not set"):
        importlib.import_module("parse_feed")
    sys.modules.pop("parse_feed", None)
