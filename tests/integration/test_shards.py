"""A large delivery cut into shards (issue 26): each shard walks its key range with a walk, a
lock and batches of its own; the delivery's report adds them up. A sharded run and an
unsharded one on the same delivery report the same figures and put every matched visitor at
Adobe once."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from feedsync.cli import main
from sandbox import feedgen
from sandbox.run import Sandbox
from sandbox.world import World
from tests.integration.test_in_flight import _received

DAY = "2026-11-20"
KEY = f"adobe/acmeprod/acmeprod_{DAY}"
FIGURES = ("pending", "already_enriched", "looked_up", "matched", "not_found", "rejected",
           "uploaded_rows")  # fmt: skip


def _day(world: World) -> set[str]:
    rng = random.Random(17)
    record = world.deliver([feedgen.random_hits(2400, rng, 1200) for _ in range(2)], DAY)
    matched = set(world.pending(record)[::4])
    world.add_leads(sorted(matched))
    return matched


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["run-daily", *args])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return out


def test_a_sharded_run_reports_what_an_unsharded_one_does_and_sends_everyone_once(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from moto import mock_aws

    reports: dict[str, dict[str, Any]] = {}
    for label, args in (("plain", ()), ("sharded", ("--shards", "3"))):
        with mock_aws():
            world = World(sandbox, tmp_path / label, env={"ADOBE_SETTLE_SECONDS": "0"})
            for name, value in world.env.items():
                monkeypatch.setenv(name, value)
            matched = _day(world)
            for _ in range(4):  # the walk, then Adobe's verdicts
                _run(capsys, *args)
            rows = _received(world)
            assert set(rows) == matched and max(rows.values()) == 1, label
            reports[label] = world.report(KEY)
            if label == "sharded":
                walk = world.table.get_item(
                    Key={"pk": f"delivery#{KEY}", "sk": "walk#" + reports[label]["generation"]}
                )["Item"]
                assert '"shards": [[null' in walk["record"]  # three ranges, from the start
                shard_walks = world.table.query(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :walk)",
                    ExpressionAttributeValues={":pk": f"delivery#{KEY}", ":walk": "walk#"},
                )["Items"]
                assert len(shard_walks) == 4  # the delivery's and three shards'
        sandbox.adobe.datasource_files.clear()
        sandbox.adobe.datasource_jobs.clear()
    plain, sharded = reports["plain"], reports["sharded"]
    assert {k: sharded[k] for k in FIGURES} == {k: plain[k] for k in FIGURES}
    assert sharded["status"] == plain["status"] == "complete"
    assert sharded["adobe"]["visitors_accepted"] == plain["adobe"]["visitors_accepted"]


def test_a_shard_execution_that_ended_short_is_started_anew_by_the_next_daily_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Through the handler, with the DailyShards state machine in moto (which runs nothing):
    the daily run cuts the day and starts an execution; while it runs, the next daily run
    starts nothing; once it ended with the shards unwalked (a shard failed for good), the next
    daily run starts a second one - and the shards it then runs finish the day."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="feedsync-daily-shards", definition='{"StartAt": "Shards", "States": {}}',
            roleArn="arn:aws:iam::123456789012:role/feedsync-daily-shards",
        )["stateMachineArn"]  # fmt: skip
        world = World(sandbox, tmp_path, env={"ADOBE_SETTLE_SECONDS": "0",
                                              "SHARD_VISITORS": "1000", "MAX_SHARDS": "3",
                                              "SHARD_STATE_MACHINE_ARN": arn})  # fmt: skip
        matched = _day(world)

        def executions() -> list[dict[str, Any]]:
            found = sfn.list_executions(stateMachineArn=arn)["executions"]
            return sorted(found, key=lambda e: e["name"])

        first = world.invoke({})
        assert [d["status"] for d in first["deliveries"]] == ["sharded"]
        assert [e["status"] for e in executions()] == ["RUNNING"]
        world.invoke({})  # the execution still runs: nothing new
        assert len(executions()) == 1
        sfn.stop_execution(executionArn=executions()[0]["executionArn"], error="States.TaskFailed")
        world.invoke({})
        started = executions()
        assert [e["status"] for e in started] == ["ABORTED", "RUNNING"]
        assert started[1]["name"].endswith("-2") and started[0]["name"].endswith("-1")
        # play the second execution: every shard until it stops answering in_progress, then
        # the delivery
        import json

        payload = json.loads(sfn.describe_execution(executionArn=started[1]["executionArn"])
                             ["input"])  # fmt: skip
        assert len(payload["shards"]) > 1
        for item in payload["shards"]:
            while world.invoke(item)["shard_status"] == "in_progress":
                pass
        world.invoke({"delivery": payload["delivery"]})
        for _ in range(3):  # Adobe's verdicts
            world.invoke({})
        rows = _received(world)
        assert set(rows) == matched and max(rows.values()) == 1
        assert world.report(KEY)["status"] == "complete"
