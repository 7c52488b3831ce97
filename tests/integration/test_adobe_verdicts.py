"""Every answer Adobe documents for a file it took (issue 27), through the EnrichUploadFunction
handler on moto and the spec-written stand-ins: Platform's every batchStatus word, partial
ingestion with the visitors named, terminal states that ingest nothing, ids that cannot be
ECIDs, and BDIA/Target partial verdicts that do not say which rows."""

from __future__ import annotations

import random
from typing import Any

import pytest

from feedsync.cli import main
from sandbox.run import Sandbox
from sandbox.world import World
from tests.integration.test_aep import KEY, _deliver, _ecids, _ingested, _setup


def _runs(world: World, n: int) -> list[dict[str, Any]]:
    return [world.invoke({}) for _ in range(n)]


def test_a_partial_platform_batch_names_who_was_not_ingested_with_platforms_reason(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _setup(world, sandbox)
    matched = _deliver(world)
    refused = sorted(matched)[::4]
    reason = "IDENTITY-1000-400 the identity value is not valid for its namespace"
    sandbox.platform.refuse_ids = dict.fromkeys(refused, reason)
    summaries = _runs(world, 4)
    report = world.report(KEY)
    adobe = report["adobe"]
    assert adobe["visitors_not_ingested"] == len(refused)  # never "accepted"
    assert adobe["visitors_accepted"] == len(matched) - len(refused)
    assert f"{len(refused):,} not ingested" in report["outcome"]
    named = {row["visitor"]: row["reason"] for row in report["not_ingested"]}
    assert set(named) == set(refused[:50])
    assert all("IDENTITY-1000-400" in why for why in named.values())
    assert report["next_steps"] and "--rejected" in " ".join(report["next_steps"])
    total = sum(s["reconciliation"]["not_ingested"] for s in summaries)
    assert total == len(refused)  # RowsNotIngested is emitted from these figures
    # the cause is fixed at Platform: the operator sends them again
    sandbox.platform.refuse_ids = {}
    assert main(["retry", KEY, "--rejected"]) == 0
    assert f"{len(refused):,} refused" in capsys.readouterr().out
    _runs(world, 4)
    ingested = _ecids(_ingested(sandbox))
    assert sorted(ingested) == sorted(matched)  # everyone once, the refused ones now too
    report = world.report(KEY)
    assert report["adobe"]["visitors_not_ingested"] == 0
    assert report["adobe"]["visitors_accepted"] == len(matched)


def test_every_documented_batch_status_word_is_read_for_what_it_means(
    world: World, sandbox: Sandbox
) -> None:
    """active for success, staging/queued/loaded/retrying/inactive while processing: none is an
    error, every visitor is accepted once."""
    _setup(world, sandbox)
    matched = _deliver(world)
    sandbox.platform.draw = random.Random(5)
    summaries = _runs(world, 8)
    assert all(not s["reconciliation"]["errors"] for s in summaries), summaries
    words = {b["status"] for b in sandbox.platform.batches.values()}
    assert words <= {"success", "active"} and words
    assert sorted(_ecids(_ingested(sandbox))) == sorted(matched)
    assert world.report(KEY)["status"] == "complete"


@pytest.mark.parametrize("state", ["aborted", "abandoned", "deleted"])
def test_a_batch_that_ends_without_ingesting_releases_its_visitors(
    world: World, sandbox: Sandbox, state: str
) -> None:
    _setup(world, sandbox)
    matched = _deliver(world)
    sandbox.platform.end_batches = {"_b00000_": state}  # the first batch only
    _runs(world, 7)
    assert {b["status"] for b in sandbox.platform.batches.values()} >= {state}
    assert sorted(_ecids(_ingested(sandbox))) == sorted(matched)  # re-sent, each once
    assert world.report(KEY)["status"] == "complete"


def test_a_stalled_batch_is_reported_stuck_at_once(world: World, sandbox: Sandbox) -> None:
    _setup(world, sandbox)
    _deliver(world)
    sandbox.platform.end_batches = {"_b00000_": "stalled"}
    summaries = _runs(world, 4)
    assert sum(s["reconciliation"]["stuck"] for s in summaries) >= 1
    assert world.report(KEY)["adobe"]["stuck"] == 1


def test_ids_that_cannot_be_ecids_are_refused_before_sending_to_platform(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from sandbox import feedgen

    _setup(world, sandbox)
    odd = [feedgen.Hit(f"{n:019d}:{n * 7:019d}") for n in range(1, 41)]
    record = world.deliver([odd, []], "2026-11-20")
    world.add_leads(world.pending(record))
    _runs(world, 3)
    report = world.report(KEY)
    assert report["rejected"] == 40 and report["uploaded_rows"] == 0
    assert "Experience Cloud ID" in next(iter(report["rejected_reasons"]))
    assert sandbox.platform.batches == {}  # nothing sent
    # status and its page say it too, not only the report
    page = tmp_path / "status.html"
    main(["status", "--days", "3650", "--html", str(page)])
    assert "40 rows rejected" in capsys.readouterr().out
    html = page.read_text()
    assert "<th>rejected rows</th>" in html and "<td class=n>40</td>" in html


def test_a_bdia_file_complete_with_invalid_rows_is_partly_ingested_unknown_which(
    world: World, sandbox: Sandbox
) -> None:
    from tests.integration.test_enrich_handler import _delivery

    world.env.update(DESTINATIONS="bdia", ADOBE_SETTLE_SECONDS="0")
    record = _delivery(world)
    world.add_leads(world.pending(record)[::10])
    sandbox.adobe.invalid_bdia_rows = {"feedsync-": 3}  # every file: COMPLETE, 3 invalid rows
    _runs(world, 4)
    report = world.report(KEY)
    files = report["adobe"]["files_sent"]
    assert report["adobe"]["rows_not_ingested_unknown_which"] == 3 * files
    assert "unknown which" in report["outcome"]
    assert any("without saying which" in step for step in report["next_steps"])
