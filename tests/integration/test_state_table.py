"""The ledger, run checkpoints and run lock on StateTable (moto DynamoDB)."""

from __future__ import annotations

from typing import Any

from feedsync.aws.ledger import DAY, DynamoLedger
from feedsync.aws.runstate import DynamoRunState


def test_ledger_remembers_uploads_longer_than_misses(dynamo_table: Any) -> None:
    now = [1_800_000_000.0]
    ledger = DynamoLedger(dynamo_table, ttl_days=90, miss_ttl_days=7, clock=lambda: now[0])
    ids = [f"{n:038d}" for n in range(250)]  # more than one BatchGetItem (100 keys)
    ledger.record("acmeprod", [(v, "uploaded") for v in ids[:120]], "d1")
    ledger.record("acmeprod", [(v, "not_found") for v in ids[120:200]], "d1")
    assert ledger.known("acmeprod", ids) == set(ids[:200])
    assert ledger.known("otherrsid", ids) == set()  # per report suite
    now[0] += 8 * DAY  # misses expire (DynamoDB's TTL deletion may lag; expiry is checked)
    assert ledger.known("acmeprod", ids) == set(ids[:120])
    now[0] += 90 * DAY
    assert ledger.known("acmeprod", ids) == set()
    item = dynamo_table.get_item(Key={"pk": f"ledger#acmeprod#{ids[0]}", "sk": "visitor"})["Item"]
    assert item["status"] == "uploaded" and int(item["expires_at"]) == 1_800_000_000 + 90 * DAY


def test_run_lock_is_exclusive_until_its_lease_ends(dynamo_table: Any) -> None:
    now = [1000.0]
    runs = DynamoRunState(dynamo_table, clock=lambda: now[0])
    assert runs.acquire("run-a", "inv-1", 60)
    assert runs.acquire("run-a", "inv-1", 60)  # the holder renews
    assert not runs.acquire("run-a", "inv-2", 60)
    runs.release("run-a", "inv-2")  # not the owner: no effect
    assert not runs.acquire("run-a", "inv-2", 60)
    now[0] += 61
    assert runs.acquire("run-a", "inv-2", 60)  # the lease of a crashed holder ended
    runs.release("run-a", "inv-2")
    assert runs.acquire("run-a", "inv-3", 60)


def test_checkpoints_and_upload_records_round_trip(dynamo_table: Any) -> None:
    runs = DynamoRunState(dynamo_table)
    for index in range(3):
        runs.save_batch("adobe/x/x_2026-11-20", index, {"pending": index, "jobs": {}})
    runs.save_batch("adobe/x/x_2026-11-21", 0, {"pending": 9})
    assert runs.batches("adobe/x/x_2026-11-20") == {i: {"pending": i, "jobs": {}} for i in range(3)}
    assert runs.upload("adobe/x/x_2026-11-20", 1, "datasources") is None
    runs.save_upload(
        "adobe/x/x_2026-11-20", 1, "datasources", {"state": "sent", "jobs": [{"job_id": 7}]}
    )
    assert runs.upload("adobe/x/x_2026-11-20", 1, "datasources") == {
        "state": "sent",
        "jobs": [{"job_id": 7}],
    }


def test_a_heartbeat_renews_only_a_lock_it_still_holds(dynamo_table: Any) -> None:
    now = [1000.0]
    runs = DynamoRunState(dynamo_table, clock=lambda: now[0])
    assert not runs.renew("run-b", "inv-1", 60)  # never creates a lock
    assert runs.holder("run-b") is None
    assert runs.acquire("run-b", "inv-1", 60)
    now[0] += 20
    assert runs.renew("run-b", "inv-1", 60)
    holder = runs.holder("run-b")
    assert holder is not None and holder.until == 1080 and holder.renewed_at == 1020
    runs.acquire("run-b", "inv-2", 60, force=True)  # taken over (--break-lock)
    assert not runs.renew("run-b", "inv-1", 60)  # the old holder learns it lost the lock
