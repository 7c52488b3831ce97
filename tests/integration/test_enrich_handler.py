"""EnrichUploadFunction end to end: moto for AWS, the sandbox for Marketo and Adobe."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from typing import Any

import pytest

from sandbox import feedgen
from sandbox.lambda_context import FakeLambdaContext
from sandbox.world import FOLDER, World

DAY1, DAY2 = "2026-11-20", "2026-11-21"
KEY1, KEY2 = f"{FOLDER}acmeprod_{DAY1}", f"{FOLDER}acmeprod_{DAY2}"


def _delivery(
    world: World,
    day: str = DAY1,
    seed: int = 3,
    visitors: list[str] | None = None,
    size: int = 500,
) -> dict[str, Any]:
    rng = random.Random(seed)
    files = [feedgen.random_hits(size * 2, rng, size) for _ in range(2)]
    if visitors:  # visitors seen again on another day
        files[0].extend(feedgen.Hit(v) for v in visitors)
    files[1].extend(files[0][:50])  # Adobe re-sends some hits
    record = world.deliver(files, day)
    assert record["complete"], record["reasons"]
    return record


def _matched(world: World, pending: list[str], every: int = 10) -> dict[str, dict[str, Any]]:
    return world.add_leads(pending[::every])


def test_daily_run_uploads_matched_visitors_once(world: World) -> None:
    record = _delivery(world)
    pending = world.pending(record)
    leads = _matched(world, pending)
    summary = world.invoke({"scheduled_time": "2026-11-22T06:00:00Z"})
    assert [d["status"] for d in summary["deliveries"]] == ["complete"]
    report = world.report(KEY1)
    assert report["pending"] == record["visitors_pending"] == len(pending)
    assert report["looked_up"] == len(pending) and report["matched"] == len(leads)
    assert report["uploaded_rows"] == len(leads) and report["rejected"] == 0
    assert report["crm_calls"] == sum(
        -(-min(300, len(pending) - s) // 300) for s in range(0, len(pending), 300)
    )
    rows = world.uploaded_rows()
    assert sorted(r[1] for r in rows) == sorted(leads)  # transactionID = the visitor id
    assert {r[0] for r in rows} == {"11/20/2026/12/00/00"}  # the hit day, not the run day
    assert {r[2] for r in rows} == {"1"}
    by_visitor = {r[1]: r for r in rows}
    for visitor, lead in leads.items():
        assert by_visitor[visitor][3] == str(lead["id"])
        assert ";" not in by_visitor[visitor][4] and "\t" not in by_visitor[visitor][4]
    header = next(iter(world.box.adobe.datasource_files.values())).decode().splitlines()[1]
    assert header == "Date\ttransactionID\tEvent 51\tEvar 22\tEvar 23\tEvar 24"
    assert world.state.exists(f"enriched/{KEY1}")
    assert world.lambda_calls.events == []
    # the next day's schedule finds nothing new to do
    calls = len(world.box.marketo.call_times)
    assert world.invoke({"scheduled_time": "2026-11-23T06:00:00Z"})["deliveries"] == []
    assert len(world.box.marketo.call_times) == calls


def test_rerunning_a_delivery_costs_nothing_and_uploads_nothing(world: World) -> None:
    record = _delivery(world)
    _matched(world, world.pending(record))
    world.invoke({})
    jobs, calls = len(world.box.adobe.datasource_jobs), len(world.box.marketo.call_times)
    again = world.invoke({"delivery": KEY1})
    assert again["deliveries"][0]["status"] == "complete"
    assert len(world.box.adobe.datasource_jobs) == jobs
    assert len(world.box.marketo.call_times) == calls  # every batch already done


def test_visitors_returning_the_next_day_are_not_looked_up_again(world: World) -> None:
    record = _delivery(world)
    pending = world.pending(record)
    leads = _matched(world, pending)
    world.invoke({})
    returning = pending[:200]
    _delivery(world, DAY2, seed=4, visitors=returning)
    world.invoke({})
    second = world.report(KEY2)
    assert second["already_enriched"] == len(returning)
    assert second["looked_up"] == second["pending"] - len(returning)
    uploaded = Counter(r[1] for r in world.uploaded_rows())
    assert all(uploaded[v] == 1 for v in leads)  # nobody twice


class ShortOnTime(FakeLambdaContext):
    """A context whose remaining time drops to 31 s once ``short`` is set."""

    short = False

    def get_remaining_time_in_millis(self) -> int:
        return 31_000 if self.short else 900_000


def test_long_run_continues_in_new_invocations_without_repeating_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _delivery(world, size=1200)
    pending = world.pending(record)
    leads = _matched(world, pending)
    batches = -(-len(pending) // 300)
    assert batches >= 3
    from feedsync.aws.runstate import DynamoRunState

    original = DynamoRunState.save_walk
    contexts: list[ShortOnTime] = []
    cursors: list[Any] = [None]

    def save_then_run_short(
        self: DynamoRunState, run: str, generation: str, rec: dict[str, Any]
    ) -> bool:
        saved = original(self, run, generation, rec)
        if rec.get("cursor") != cursors[-1]:  # a batch was counted: the cursor moved
            cursors.append(rec.get("cursor"))
            contexts[-1].short = True  # after one batch, each invocation runs out of time
        return saved

    monkeypatch.setattr(DynamoRunState, "save_walk", save_then_run_short)
    event: dict[str, Any] = {}
    for _ in range(batches + 1):
        contexts.append(ShortOnTime("EnrichUploadFunction"))
        summary = world.invoke(event, contexts[-1])
        if not summary["continued"]:
            break
        event = world.lambda_calls.events[-1]
    assert world.report(KEY1)["status"] == "complete"
    assert len(world.lambda_calls.events) == batches - 1
    assert [e["continuation"] for e in world.lambda_calls.events] == list(range(1, batches))
    assert len(world.box.marketo.call_times) == batches  # one 300-id call per batch, none repeated
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(leads)


def test_run_killed_after_an_upload_is_repeated_without_duplicates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _delivery(world)
    pending = world.pending(record)
    leads = _matched(world, pending, every=3)
    from feedsync.aws.runstate import DynamoRunState

    original = DynamoRunState.save_file
    sent = {"n": 0}

    def crash_after_second_upload(
        self: DynamoRunState, run: str, rec: Any, counters: Any = ()
    ) -> bool:
        sent["n"] += 1
        if sent["n"] == 2:
            raise KeyboardInterrupt("the invocation was killed")  # after Adobe took the file
        return bool(original(self, run, rec, counters))

    monkeypatch.setattr(DynamoRunState, "save_file", crash_after_second_upload)
    with pytest.raises(KeyboardInterrupt):
        world.invoke({})
    assert len(world.box.adobe.datasource_jobs) == 2
    monkeypatch.setattr(DynamoRunState, "save_file", original)
    # the lock of the killed invocation expires; a later one takes over
    world.table.delete_item(Key={"pk": f"delivery#{KEY1}", "sk": "lock"})
    world.invoke({})
    names = Counter(j["filename"] for j in world.box.adobe.datasource_jobs.values())
    assert max(names.values()) == 1  # the second file was found at Adobe, not sent again
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(leads)
    assert world.report(KEY1)["status"] == "complete"


def test_quota_exhausted_mid_run_stops_cleanly_and_resumes_next_day(world: World) -> None:
    record = _delivery(world, size=1200)
    pending = world.pending(record)
    leads = _matched(world, pending)
    world.box.marketo.daily_quota = 2
    summary = world.invoke({})
    assert summary["deliveries"][0]["status"] == "quota_exhausted"
    report = world.report(KEY1)
    assert report["status"] == "quota_exhausted" and "607" in report["error"]
    assert report["batches_done"] == 2
    assert not world.state.exists(f"enriched/{KEY1}")
    world.box.marketo.daily_quota = 50_000  # a new day
    world.box.marketo.call_times.clear()
    world.invoke({})
    assert world.report(KEY1)["status"] == "complete"
    assert len(world.box.marketo.call_times) == -(-len(pending) // 300) - 2
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(leads)


def test_bad_crm_values_are_rejected_or_normalised_and_reported(world: World) -> None:
    record = _delivery(world)
    pending = world.pending(record)
    odd = {
        pending[0]: {"Account_Type__c": {"nested": "object"}},
        pending[1]: {"Account_Type__c": float("nan")},
        pending[2]: {"Account_Type__c": "x" * 600, "Industry": True},
        pending[3]: {"Account_Type__c": "Gold;\tPlatinum\nTier", "Industry": 12.5},
        pending[4]: {"Account_Type__c": ["a", "b"]},
    }
    for visitor, fields in odd.items():
        world.box.marketo.add_lead(visitor, **fields)
    world.invoke({})
    report = world.report(KEY1)
    assert report["matched"] == 5 and report["rejected"] == 3 and report["uploaded_rows"] == 2
    reasons = {s["visitor"]: s["reason"] for s in report["rejected_samples"]}
    assert reasons[pending[0]] == "Account_Type__c: a dict is not a column value"
    assert reasons[pending[1]] == "Account_Type__c: not a finite number: nan"
    assert reasons[pending[4]] == "Account_Type__c: a list is not a column value"
    rows = {r[1]: r for r in world.uploaded_rows()}
    assert rows[pending[2]][4] == "x" * 255 and rows[pending[2]][5] == "true"
    assert rows[pending[3]][4] == "Gold Platinum Tier" and rows[pending[3]][5] == "12.5"


def test_dry_run_writes_files_and_report_but_calls_no_adobe(world: World) -> None:
    record = _delivery(world)
    leads = _matched(world, world.pending(record))
    summary = world.invoke({"date": DAY1, "dry_run": True})
    run_id = summary["request"]["run_id"]
    assert world.box.adobe.datasource_jobs == {} and world.box.adobe.token_requests == 0
    report = world.report(f"dry-run/{run_id}/{KEY1}")
    assert report["dry_run"] and report["matched"] == len(leads)
    files = list(world.state.list(f"uploads/dry-run/{run_id}/{KEY1}/datasources/"))
    text = b"".join(world.state.get(k) or b"" for k in files).decode()
    assert all(v in text for v in leads)
    assert not world.state.exists(f"enriched/{KEY1}")
    world.invoke({})  # the real run still uploads everyone
    assert len(world.uploaded_rows()) == len(leads)


def test_every_destination_receives_the_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.env["DESTINATIONS"] = "datasources,bdia,target"
    world.box.adobe.bdia_interval = world.box.adobe.bdia_group_interval = 0.0
    record = _delivery(world)
    leads = _matched(world, world.pending(record), every=25)
    import feedsync.adobe.bdia as bdia_module

    monkeypatch.setattr(bdia_module.Pacer, "__init__", _fast_pacer_init(bdia_module.Pacer.__init__))
    world.invoke({}, monkeypatch=monkeypatch)
    report = world.report(KEY1)
    assert set(report["jobs"]) == {"datasources", "bdia", "target"}
    ingested = sum(v["rows"] for v in world.box.adobe.bdia_ingested.values())
    assert ingested == len(leads)
    crm_ids = {str(lead["id"]) for lead in leads.values()}
    assert set(world.box.adobe.profiles) == crm_ids  # Target keyed by the CRM id


def test_findings_8_and_15_a_bdia_file_adobe_answers_error_is_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """static/bulk-data-insertion.json: status_code REJECTED | UPLOADED | PROCESSING | COMPLETE
    | ERROR. A file that ends ERROR ingested nothing: its visitors are released and re-sent,
    never counted as delivered; invalid_rows of a COMPLETE file are counted."""
    import feedsync.adobe.bdia as bdia_module

    monkeypatch.setattr(bdia_module.Pacer, "__init__", _fast_pacer_init(bdia_module.Pacer.__init__))
    world.env.update(DESTINATIONS="bdia", BATCH_SIZE="300")
    adobe = world.box.adobe
    adobe.bdia_interval = adobe.bdia_group_interval = 0.0
    adobe.error_bdia_next = 1  # the first file taken ends ERROR
    adobe.bdia_processing = 1  # each file is PROCESSING at the first lookup
    record = _delivery(world, size=900)
    leads = _matched(world, world.pending(record), every=5)
    world.invoke({}, monkeypatch=monkeypatch)
    report = world.report(KEY1)
    assert report["adobe"]["visitors_awaiting_verdict"] == len(leads)
    world.invoke({}, monkeypatch=monkeypatch)  # lookups: ERROR for the first, PROCESSING others
    first = world.report(KEY1)
    errored = [v for v in first["verdicts"] if v["status"] == "ERROR"]
    assert len(errored) == 1 and errored[0]["outcome"] == "failed"
    world.invoke({}, monkeypatch=monkeypatch)  # COMPLETE for the rest and the re-sent file
    world.invoke({}, monkeypatch=monkeypatch)
    ingested = Counter(
        row.split(",")[0]
        for data in adobe.bdia_files.values()
        for row in __import__("gzip").decompress(data).decode().splitlines()[1:]
    )
    assert set(ingested) == set(leads) and max(ingested.values()) == 1
    report = world.report(KEY1)
    assert report["status"] == "complete"
    assert report["adobe"]["visitors_accepted"] == len(leads)
    assert report["uploaded_rows"] == len(leads)


def test_finding_3_a_crm_export_in_s3_is_read_by_the_deployed_function(world: World) -> None:
    record = _delivery(world)
    pending = world.pending(record)
    lines = ["Adobe_Visitor_ID,id,Account_Type__c,Industry"]
    lines += [f"{v},{9000 + n},Customer,Retail" for n, v in enumerate(pending[::7])]
    world.state.put("crm/export.csv", ("\n".join(lines) + "\n").encode())
    world.env.update(CRM_SOURCE="file", CRM_FILE=f"s3://{world.state.bucket}/crm/export.csv")
    summary = world.invoke({})
    assert summary["deliveries"][0]["status"] == "complete", summary
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(pending[::7])
    assert world.box.marketo.call_times == []


def _fast_pacer_init(original: Any) -> Any:
    def init(self: Any, interval: float = 1.0, group_interval: float = 20.0, **kw: Any) -> None:
        original(self, 0.0, 0.0, **kw)

    return init


def test_the_retired_14_destination_fails_at_cold_start_naming_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.env["DESTINATIONS"] = "datasources,datasources14"
    answer = world.invoke({}, monkeypatch=monkeypatch)
    message = answer["error"]
    assert answer["status"] == "not_configured" and "retired" in message and "2026-08-12" in message
    assert "datasources (Data Sources 2.0)" in message and "bdia" in message


def test_failed_delivery_is_skipped_with_its_reason(world: World) -> None:
    record = _delivery(world)
    broken = dict(
        record,
        complete=False,
        status="failed",
        reasons=["01-acmeprod_2026-11-20.tsv.gz: MD5-Digest check failed"],
    )
    from feedsync.storage import put_json

    put_json(world.state, f"deliveries/{KEY1}.json", broken)
    summary = world.invoke({})
    assert summary["deliveries"][0]["status"] == "skipped"
    assert "MD5-Digest check failed" in summary["deliveries"][0]["error"]


def test_missing_settings_leave_the_function_not_configured_naming_them(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a first deploy without its settings starts, names what is missing and raises one alarm
    # (the NotConfigured metric), instead of failing every invocation into the failure queue
    monkeypatch.delenv("STATE_TABLE")
    del world.env["STATE_TABLE"]
    answer = world.invoke({})
    assert answer["status"] == "not_configured" and "STATE_TABLE is not set" in answer["error"]
    world.env.update(STATE_TABLE="feedsync-state-table-world", DATA_SOURCE_ID="")
    monkeypatch.setenv("DATA_SOURCE_ID", "")
    answer = world.invoke({}, monkeypatch=monkeypatch)
    assert answer["status"] == "not_configured" and "DATA_SOURCE_ID is not set" in answer["error"]
    world.env.update(DATA_SOURCE_ID="101", MARKETO_BASE_URL="http://123-ABC-456.mktorest.com")
    answer = world.invoke({}, monkeypatch=monkeypatch)
    assert "expected https://" in answer["error"]  # plain http is refused outside loopback


def test_finding_12_the_templates_placeholder_secrets_read_as_not_configured(
    world: World,
) -> None:
    """A first deploy's secrets hold what template.yaml generated ({"client_id": "set-me",
    "org_id": "set-me@AdobeOrg", "client_secret": <random>}): not configured, naming the
    secret - not an authentication error and a failed-run alarm."""
    import boto3

    _delivery(world)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.put_secret_value(
        SecretId=world.env["ADOBE_SECRET_ARN"],
        SecretString=json.dumps(
            {"client_id": "set-me", "org_id": "set-me@AdobeOrg", "client_secret": "Zq9-random"}
        ),
    )
    answer = world.invoke({})
    assert answer["status"] == "not_configured"
    assert "placeholder for client_id, org_id" in answer["error"]
    assert world.env["ADOBE_SECRET_ARN"] in answer["error"] and "Zq9" not in answer["error"]
    assert not world.box.adobe.datasource_jobs


def test_a_missing_or_bad_mapping_leaves_the_run_not_configured(world: World) -> None:
    _delivery(world)
    world.s3.delete_object(Bucket=world.state.bucket, Key="config/mapping.json")
    answer = world.invoke({})
    assert answer["status"] == "not_configured"
    assert re.search(r"no mapping file at s3://.*/config/mapping.json", answer["error"])
    world.put_mapping(
        {
            "visitor_id_field": "Adobe_Visitor_ID",
            "success_event": "event51",
            "columns": {"id": "eVar22"},
        }
    )
    answer = world.invoke({})
    assert "success_event" in answer["error"] and "needs the space: Evar 22" in answer["error"]
    assert not world.box.adobe.datasource_jobs


def test_one_run_catches_up_on_missed_days_oldest_first(world: World) -> None:
    second = _delivery(world, DAY2, seed=9)
    first = _delivery(world, DAY1, seed=8)
    _matched(world, world.pending(first) + world.pending(second), every=20)
    summary = world.invoke({"scheduled_time": "2026-11-22T06:00:00Z"})
    assert [d["key"] for d in summary["deliveries"]] == [KEY1, KEY2]
    assert all(d["status"] == "complete" for d in summary["deliveries"])
    dates = {r[0] for r in world.uploaded_rows()}
    assert dates == {"11/20/2026/12/00/00", "11/21/2026/12/00/00"}  # each delivery's own hit day


def test_the_run_emits_its_figures_as_metrics(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    record = _delivery(world)
    leads = _matched(world, world.pending(record))
    world.env["POWERTOOLS_METRICS_DISABLED"] = "false"
    handler = world.handler(monkeypatch)
    handler.metrics.clear_metrics()  # Powertools keeps metrics class-wide
    handler.lambda_handler({}, FakeLambdaContext("EnrichUploadFunction"))
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert blobs, "no EMF metrics printed"
    values: dict[str, float] = {}
    for blob in blobs:
        for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[metric["Name"]]
            values[metric["Name"]] = values.get(metric["Name"], 0) + (
                sum(value) if isinstance(value, list) else value
            )
    assert values["VisitorsMatched"] == len(leads)
    assert values["RowsUploaded"] == len(leads)
    assert values["VisitorsPending"] == record["visitors_pending"]
    assert values["DeliveriesEnriched"] == 1
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "feedsync"


def test_a_redelivered_feed_is_walked_again_without_sending_anyone_twice(world: World) -> None:
    record = _delivery(world)
    first_pending = world.pending(record)
    leads = _matched(world, first_pending)
    world.invoke({})
    # a duplicated manifest event re-closes the same content: nothing to do
    assert _delivery(world)["visitors_pending"] == record["visitors_pending"]
    assert world.invoke({})["deliveries"] == []
    # Adobe re-runs the day with more hits: new content, same delivery key
    newcomers = [f"{n:038d}" for n in range(7, 307)]
    redelivered = _delivery(world, visitors=newcomers)
    assert redelivered["visitors_pending"] > record["visitors_pending"]
    new_leads = world.add_leads(newcomers[::3], seed=6)
    summary = world.invoke({})
    assert summary["deliveries"][0]["status"] == "complete"
    report = world.report(KEY1)
    assert report["already_enriched"] == len(first_pending)  # ledger: looked up or uploaded before
    uploaded = Counter(r[1] for r in world.uploaded_rows())
    assert set(uploaded) == set(leads) | set(new_leads)
    assert max(uploaded.values()) == 1
