"""Backfill: the state machine read from the template, and the local mode end to end on moto,
proving its records equal what the S3 trigger produces, and that a second backfill changes
nothing."""

from __future__ import annotations

import copy
import importlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from feedsync.cli import main
from sandbox import feedgen
from sandbox.lambda_context import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
FEED = "feedsync-feed-history"
FOLDER = "adobe/acmeprod/"
DAYS = ("2026-10-30", "2026-10-31", "2026-11-01")


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Three days of deliveries (two data files each) already in a feed bucket."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (FEED, "state-trigger", "state-backfill"):
            s3.create_bucket(Bucket=bucket)
        rng = random.Random(3)
        deliveries = []
        for day in DAYS:
            files = [feedgen.random_hits(400, rng, 120) for _ in range(2)]
            delivery = feedgen.make_delivery(tmp_path / day, files, day=day, write=False)
            for name, body in delivery.files.items():
                s3.put_object(Bucket=FEED, Key=FOLDER + name, Body=body)
            deliveries.append(delivery)
        yield s3, deliveries


def _by_trigger(s3: Any, deliveries: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """What the S3 trigger produces: every object's event through ParseFeedFunction."""
    monkeypatch.setenv("STATE_BUCKET", "state-trigger")
    sys.modules.pop("parse_feed", None)
    handler = importlib.import_module("parse_feed")
    template = json.loads((ROOT / "events" / "s3-put-datafile.json").read_text())
    for delivery in deliveries:
        order = sorted(n for n in delivery.files if n.endswith(".tsv.gz"))
        order += [n for n in delivery.files if n.endswith(".tar.gz")] + [delivery.manifest_name]
        for name in order:
            event = copy.deepcopy(template)
            event["Records"][0]["s3"]["bucket"]["name"] = FEED
            event["Records"][0]["s3"]["object"]["key"] = quote_plus(FOLDER + name, safe="/")
            handler.lambda_handler(event, FakeLambdaContext("ParseFeedFunction"))


def _cli_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler gave the package's loggers its stdout JSON handler; a CLI has none. Undone
    after the test: Powertools finds its handler on that logger when a handler module loads."""
    import logging

    package = logging.getLogger("feedsync")
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "propagate", True)


def _stored(s3: Any, bucket: str) -> dict[str, Any]:
    """Every record and result, without the moments they were written."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if key.endswith(".json") and not key.startswith("backfills/"):
                data = json.loads(body)
                for moment in ("closed_at", "parsed_at"):
                    data.pop(moment, None)
                out[key] = data
            elif key.endswith(".visitors.gz"):
                out[key] = body
    return out


def test_a_local_backfill_produces_what_the_s3_trigger_does_and_is_idempotent(
    history: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, deliveries = history
    _by_trigger(s3, deliveries, monkeypatch)
    _cli_logging(monkeypatch)
    capsys.readouterr()  # the function's own log lines
    monkeypatch.setenv("STATE_BUCKET", "state-backfill")
    code = main(["backfill", f"s3://{FEED}/{FOLDER}", "--local", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["done"] == {"data": 6, "manifest": 3} and out["listed"] == 12
    expected = _stored(s3, "state-trigger")
    assert _stored(s3, "state-backfill") == expected
    assert len([k for k in expected if k.startswith("deliveries/")]) == 3
    assert main(["backfill", f"s3://{FEED}/{FOLDER}", "--local", "--json"]) == 0
    capsys.readouterr()
    assert _stored(s3, "state-backfill") == expected  # a second backfill changes nothing
    main(["status", "--days", "3650"])
    assert "backfills:" in capsys.readouterr().out


def test_a_day_range_narrows_the_backfill(
    history: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _ = history
    monkeypatch.setenv("STATE_BUCKET", "state-backfill")
    code = main(["backfill", f"s3://{FEED}/{FOLDER}", "--local", "--from", DAYS[1], "--to",
                 DAYS[1], "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["done"] == {"data": 2, "manifest": 1}
    records = [k for k in _stored(s3, "state-backfill") if k.startswith("deliveries/")]
    assert records == [f"deliveries/{FOLDER}acmeprod_{DAYS[1]}.json"]


def test_the_function_takes_backfill_items_and_skips_the_other_phase(
    history: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_BUCKET", "state-backfill")
    sys.modules.pop("parse_feed", None)
    handler = importlib.import_module("parse_feed")
    key = f"{FOLDER}01-acmeprod_{DAYS[0]}.tsv.gz"
    item = {"backfill": {"bucket": FEED, "key": key, "phase": "data", "from": None, "to": None}}
    context = FakeLambdaContext("ParseFeedFunction")
    assert handler.lambda_handler(item, context)["results"][0]["status"] == "parsed"
    item["backfill"]["phase"] = "manifest"  # a data file is not the manifest phase's business
    assert handler.lambda_handler(item, context)["results"] == []


def test_the_state_machine_maps_the_listing_through_the_parse_function() -> None:
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    machine = template["Resources"]["BackfillStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["ParseFunctionArn"] == {
        "Fn::GetAtt": ["ParseFeedFunction", "Arn"]
    }
    states = machine["Definition"]["States"]
    assert machine["Definition"]["StartAt"] == "ParseDataFiles"
    assert states["ParseDataFiles"]["Next"] == "CloseDeliveries"
    for name, phase in (("ParseDataFiles", "data"), ("CloseDeliveries", "manifest")):
        state = states[name]
        assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert state["ItemSelector"]["backfill"]["phase"] == phase
        assert state["MaxConcurrency"] == "${Concurrency}"
        assert state["ToleratedFailurePercentage"] == "${ToleratedFailures}"
        (task,) = state["ItemProcessor"]["States"].values()
        assert task["Parameters"]["FunctionName"] == "${ParseFunctionArn}"
        assert "Lambda.TooManyRequestsException" in task["Retry"][0]["ErrorEquals"]
    params = template["Parameters"]
    assert params["BackfillConcurrency"]["Default"] == 40
    assert "BackfillStateMachineArn" in template["Outputs"]


def test_a_broken_data_file_is_counted_per_phase_and_said_on_stderr(
    history: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _ = history
    s3.put_object(Bucket=FEED, Key=f"{FOLDER}01-acmeprod_{DAYS[0]}.tsv.gz", Body=b"not gzip")
    monkeypatch.setenv("STATE_BUCKET", "state-backfill")
    code = main(["backfill", f"s3://{FEED}/{FOLDER}", "--local"])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "6 data files parsed" not in out and "data files parsed (1 failed)" in out, out
    assert "feedsync:" not in out and f"01-acmeprod_{DAYS[0]}.tsv.gz" in err, err
