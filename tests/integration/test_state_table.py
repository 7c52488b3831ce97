"""The ledger, run state and run lock on StateTable (moto DynamoDB): the adapters keep the
ports' contracts (state/ports.py, state/ledger.py) that the in-memory fakes keep too."""

from __future__ import annotations

from typing import Any

from feedsync.aws.ledger import DAY, DynamoLedger
from feedsync.aws.runstate import DynamoRunState
from feedsync.state import ledger as moves
from feedsync.state.ledger import VisitorState
from feedsync.state.records import FileRecord, JobRef, Walk
from tests.fakes import MemoryLedger

KEY = "adobe/x/x_2026-11-20"


def _both(dynamo_table: Any, now: list[float]) -> list[Any]:
    clock = lambda: now[0]  # noqa: E731
    return [
        DynamoLedger(dynamo_table, ttl_days=90, miss_ttl_days=7, clock=clock),
        MemoryLedger(90, 7, clock=clock),
    ]


def test_ledger_moves_are_conditional_and_expire_by_state(dynamo_table: Any) -> None:
    now = [1_800_000_000.0]
    for ledger in _both(dynamo_table, now):
        now[0] = 1_800_000_000.0
        ids = [f"{n:038d}" for n in range(250)]  # more than one transaction (100) and get (100)
        planned = ledger.move(
            "rs", "datasources", [moves.claim(v, None, KEY, "b1") for v in ids[:150]]
        )
        assert planned == set(ids[:150])
        missed = [moves.miss(v, VisitorState.NOT_FOUND, KEY, "b1") for v in ids[120:]]
        # a miss never displaces a claim of another batch; ours (same batch, still planned) may
        assert ledger.move("rs", "datasources", missed) == set(ids[120:])
        other = [moves.claim(v, None, KEY, "b2") for v in ids]
        assert ledger.move("rs", "datasources", other) == set(ids[120:])  # misses are claimable
        entries = ledger.entries("rs", "datasources", ids)
        assert {e.claim for v, e in entries.items() if v in ids[:120]} == {"b1"}
        assert ledger.entries("rs", "target", ids) == {}  # per destination
        assert ledger.entries("other", "datasources", ids) == {}  # per report suite
        sent = [moves.sent(v, entries[v], "b1", "f1") for v in ids[:120]]
        assert ledger.move("rs", "datasources", sent) == set(ids[:120])
        assert ledger.move("rs", "datasources", sent) == set(ids[:120])  # a re-run: the same
        entries = ledger.entries("rs", "datasources", ids)
        verdict = moves.verdict_moves(entries, ids[:120], "b1", "f1", False, 1, "Adobe: failure")
        ledger.move("rs", "datasources", verdict)
        after = ledger.entries("rs", "datasources", ids[:120])
        assert {e.state for e in after.values()} == {VisitorState.GIVEN_UP}
        assert {e.reason for e in after.values()} == {"Adobe: failure"}
        now[0] += 8 * DAY  # b2's planned entries live 90 days; misses would be gone
        assert len(ledger.entries("rs", "datasources", ids)) == 250
        now[0] += 90 * DAY  # expired entries count as absent (TTL deletion lags)
        assert ledger.entries("rs", "datasources", ids) == {}
        again = ledger.move("rs", "datasources", [moves.claim(v, None, KEY, "b3") for v in ids])
        assert again == set(ids)
    item = dynamo_table.get_item(Key={"pk": f"ledger#rs#{'0' * 38}", "sk": "dest#datasources"})
    assert item["Item"]["state"] == "planned" and item["Item"]["claim"] == "b3"


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


def test_walks_plans_and_files_round_trip_and_forget(dynamo_table: Any) -> None:
    runs = DynamoRunState(dynamo_table)
    walk = Walk("g1", cursor="0042", next_batch=3, version=1)
    assert runs.save_walk(KEY, "g1", walk.to_json())
    assert not runs.save_walk(KEY, "g1", walk.to_json())  # version 1 again: refused
    walk.version = 2
    assert runs.save_walk(KEY, "g1", walk.to_json())
    stale = Walk("g1", version=2)
    assert not runs.save_walk(KEY, "g1", stale.to_json())  # another invocation saved first
    assert Walk.from_json(runs.walk(KEY, "g1") or {}).cursor == "0042"
    assert runs.walk(KEY, "g2") is None
    runs.save_plan(KEY, "g1", 1, "datasources", {"state": "sent", "jobs": [{"job_id": 7}]})
    assert runs.plan(KEY, "g1", 1, "datasources") == {"state": "sent", "jobs": [{"job_id": 7}]}
    assert runs.plan(KEY, "g1", 1, "bdia") is None
    record = FileRecord("datasources", "f1.txt", KEY, "x", "g1", 1, "c", "u", "u.v", 5,
                        JobRef("f1.txt", job_id=9))  # fmt: skip
    runs.save_file(KEY, record)
    assert runs.files(KEY) == [record]
    assert runs.forget(KEY) == 3
    assert runs.files(KEY) == [] and runs.walk(KEY, "g1") is None


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
