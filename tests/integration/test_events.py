"""Every file in events/ driven through its handler: one story (the acmeprod delivery of
2026-11-20 in the feed bucket `feedsync local up` makes, keys as S3 and EventBridge send them),
parsed by ParseFeedFunction, then enriched by EnrichUploadFunction on its schedule, as a dated
backfill and as a continuation. env.local.json is what `feedsync local up` writes for its
default ports, and both functions accept it. (URL-encoded keys: test_parse_handler.)"""

from __future__ import annotations

import importlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from feedsync.config import EnrichFunctionConfig, ParseFunctionConfig
from sandbox import feedgen
from sandbox.lambda_context import FakeLambdaContext
from sandbox.world import World

EVENTS = Path(__file__).resolve().parents[2] / "events"
FEED = "feedsync-feed-local"
FOLDER = "adobe/acmeprod/"
KEY = f"{FOLDER}acmeprod_2026-11-20"
PARSE_EVENTS = ("s3-put-datafile.json", "eventbridge-object-created.json", "s3-put-manifest.json")
ENRICH_EVENTS = ("schedule-daily.json", "backfill-date.json", "continuation.json")


def test_every_event_file_is_covered() -> None:
    names = {p.name for p in EVENTS.glob("*.json")} - {"env.local.json"}
    assert names == set(PARSE_EVENTS) | set(ENRICH_EVENTS)


@pytest.fixture
def story(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The feed bucket holds the delivery the events speak of; the parse handler is loaded."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=FEED)
    rng = random.Random(11)
    files = [feedgen.random_hits(600, rng, 150) for _ in range(2)]
    delivery = feedgen.make_delivery(tmp_path / "feed", files, day="2026-11-20", write=False)
    for name, body in delivery.files.items():
        s3.put_object(Bucket=FEED, Key=FOLDER + name, Body=body)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "feedsync")
    sys.modules.pop("parse_feed", None)
    yield importlib.import_module("parse_feed"), delivery


@pytest.mark.parametrize("name", PARSE_EVENTS)
def test_parse_events_through_the_handler(story: Any, name: str) -> None:
    handler, delivery = story
    event = json.loads((EVENTS / name).read_text())
    result = handler.lambda_handler(event, FakeLambdaContext("ParseFeedFunction"))["results"][0]
    expected = "complete" if name.endswith(("manifest.json", "created.json")) else "parsed"
    assert result["status"] == expected
    if expected == "complete":
        assert result["visitors_pending"] == len(delivery.expected.final_pending)


@pytest.mark.parametrize("name", ENRICH_EVENTS)
def test_enrich_events_through_the_handler(story: Any, world: World, name: str) -> None:
    handler, _ = story
    handler.lambda_handler(
        json.loads((EVENTS / "s3-put-manifest.json").read_text()),
        FakeLambdaContext("ParseFeedFunction"),
    )
    record = json.loads(world.state.get(f"deliveries/{KEY}.json") or b"{}")
    world.add_leads(world.pending(record)[::5])
    summary = world.invoke(json.loads((EVENTS / name).read_text()))
    assert [d["key"] for d in summary["deliveries"]] == [KEY]
    assert summary["deliveries"][0]["status"] == "complete"
    if name == "backfill-date.json":  # a dry run: files and a report, nothing sent
        assert summary["request"]["dry_run"] is True and not world.box.adobe.datasource_jobs
    else:
        assert world.box.adobe.datasource_jobs


def test_env_local_is_what_local_up_writes_and_both_functions_accept_it() -> None:
    from sandbox.local import DEFAULT_AWS_PORT, DEFAULT_PORT, sam_env

    env = json.loads((EVENTS / "env.local.json").read_text())
    assert env == sam_env(
        f"http://127.0.0.1:{DEFAULT_AWS_PORT}", f"http://127.0.0.1:{DEFAULT_PORT}"
    )
    assert ParseFunctionConfig.from_env(env["ParseFeedFunction"]).state_bucket
    config = EnrichFunctionConfig.from_env(env["EnrichUploadFunction"])
    assert config.destinations == ("datasources",) and not config.dry_run


def test_every_variable_in_env_local_is_declared_by_the_template() -> None:
    """SAM applies only the variables a function declares; the rest would be dropped."""
    from cfnlint.decode import decode

    template, _ = decode(str(EVENTS.parent / "template.yaml"))
    assert template is not None
    shared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    env = json.loads((EVENTS / "env.local.json").read_text())
    for function, variables in env.items():
        declared = shared | set(
            template["Resources"][function]["Properties"]["Environment"]["Variables"]
        )
        assert set(variables) <= declared, (function, set(variables) - declared)
