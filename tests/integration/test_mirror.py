"""The Marketo mirror: bulk extracts window by window into sorted chunks, incremental updates,
checksums, the export allocation, and lookups by merge join (no per-visitor call)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from feedsync.crm.bulk_extract import BulkLeadExtract
from feedsync.crm.marketo import MarketoClient, MarketoSettings
from feedsync.crm.mirror import Mirror, MirrorJoin, one_per_id, sort_records
from feedsync.crm.mirror_sync import MirrorSync
from feedsync.crm.sources import FileSource, MirrorSource
from feedsync.deadline import Deadline
from feedsync.secret import Secret
from feedsync.storage import MemoryStore
from sandbox.run import Sandbox

NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
FIELD = "Adobe_Visitor_ID"


def stamp(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ecid(n: int) -> str:
    return f"{n:038d}"


@pytest.fixture
def marketo(sandbox: Sandbox) -> MarketoClient:
    settings = MarketoSettings(
        sandbox.url, sandbox.marketo.client_id, Secret(sandbox.marketo.client_secret)
    )
    return MarketoClient(settings)


def sync(
    marketo: MarketoClient, store: MemoryStore, now: dt.datetime = NOW, days: int = 100
) -> Any:
    mirror = Mirror(store, FIELD, ["id", "Tier"])
    extract = BulkLeadExtract(marketo, poll=0.0)
    return MirrorSync(extract, mirror, initial_days=days, now=now).run(Deadline()), mirror


def leads_over(sandbox: Sandbox, n: int, days: int) -> None:
    for k in range(n):
        when = stamp(days * k / n)
        sandbox.marketo.add_lead(ecid(k), Tier=f"t{k}", createdAt=when, updatedAt=when)


def calls(sandbox: Sandbox, path: str) -> int:
    return len(sandbox.server.requests_to("POST" if "create" in path else "GET", path))


def test_the_first_run_walks_back_window_by_window(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 90, days=95)
    sandbox.marketo.add_lead("", Tier="no visitor id", updatedAt=stamp(3))
    report, mirror = sync(marketo, MemoryStore())
    assert report.status == "current" and report.windows == 4  # 100 days in 31-day windows
    assert calls(sandbox, r"/export/create\.json") == 4
    records = dict(mirror.records())
    assert len(records) == 90 and records[ecid(7)]["Tier"] == "t7"  # no lead without an id
    assert mirror.index.watermark == "2026-11-23T06:00:00Z"
    assert list(records) == sorted(records)  # sorted by visitor id


def test_later_runs_take_only_what_changed(sandbox: Sandbox, marketo: MarketoClient) -> None:
    leads_over(sandbox, 20, days=10)
    store = MemoryStore()
    sync(marketo, store)
    later = NOW + dt.timedelta(days=1)
    lead = sandbox.marketo.leads[ecid(3)][0]
    lead.update(
        Tier="upgraded", updatedAt=(later - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    gained = sandbox.marketo.add_lead("", Tier="gains an id", updatedAt=stamp(30))
    sandbox.marketo.leads[""].remove(gained)
    gained.update(
        {
            FIELD: ecid(500),
            "updatedAt": (later - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    sandbox.marketo.leads.setdefault(ecid(500), []).append(gained)
    creates = calls(sandbox, r"/export/create\.json")
    report, mirror = sync(marketo, store, now=later)
    assert report.windows == 1 and calls(sandbox, r"/export/create\.json") == creates + 1
    records = dict(mirror.records())
    assert records[ecid(3)]["Tier"] == "upgraded"  # the newest record wins
    assert records[ecid(500)]["Tier"] == "gains an id"
    assert len(records) == 21 and mirror.index.generation == 5  # a generation per window


def test_a_corrupt_download_is_fetched_again_and_never_merged(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 10, days=5)
    sandbox.marketo.exports.corrupt_next = 1
    report, mirror = sync(marketo, MemoryStore(), days=10)
    assert report.status == "current" and len(dict(mirror.records())) == 10  # retried, right
    store = MemoryStore()
    sandbox.marketo.exports.corrupt_next = 10  # never right
    report, mirror = sync(marketo, store, days=10)
    assert report.status == "failed" and "fileChecksum" in report.detail
    assert list(mirror.records()) == [] and mirror.index.watermark == ""


def test_a_broken_transfer_resumes_with_range(sandbox: Sandbox, marketo: MarketoClient) -> None:
    leads_over(sandbox, 30, days=5)
    sandbox.marketo.exports.short_next = 1
    report, mirror = sync(marketo, MemoryStore(), days=10)
    assert report.status == "current" and len(dict(mirror.records())) == 30
    ranged = [r for r in sandbox.server.requests_to("GET", r"/file\.json") if r.header("range")]
    assert ranged and ranged[0].header("range").startswith("bytes=")


def test_the_export_allocation_running_out_stops_cleanly_then_continues(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 90, days=95)
    sandbox.marketo.exports.daily_export_bytes = 2_000  # about two windows' worth
    store = MemoryStore()
    report, mirror = sync(marketo, store)
    assert report.status == "allocation exhausted" and "1029" in report.detail
    assert 0 < report.windows < 4
    stopped_at = mirror.index.watermark
    sandbox.marketo.exports.exported_bytes = 0  # a new day
    sandbox.marketo.exports.daily_export_bytes = 10**9
    report, mirror = sync(marketo, store)
    assert report.status == "current" and mirror.index.watermark > stopped_at
    assert len(dict(mirror.records())) == 90


def test_without_updated_at_the_mirror_falls_back_to_created_at(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 10, days=5)
    sandbox.marketo.exports.supports_updated_at = False
    report, mirror = sync(marketo, MemoryStore(), days=10)
    assert report.status == "current" and report.filter == "createdAt"
    assert mirror.index.filter == "createdAt" and len(dict(mirror.records())) == 10


def test_an_export_still_running_is_resumed_by_the_next_run(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 10, days=5)
    store = MemoryStore()
    mirror = Mirror(store, FIELD, ["id", "Tier"])
    extract = BulkLeadExtract(marketo, poll=0.0)
    short = Deadline(lambda: 5.0)  # no time to wait for the export
    report = MirrorSync(extract, mirror, initial_days=10, now=NOW).run(short)
    assert report.status == "export running" and mirror.index.pending is not None
    creates = calls(sandbox, r"/export/create\.json")
    report, mirror = sync(marketo, store, days=10)
    assert report.status == "current" and calls(sandbox, r"/export/create\.json") == creates
    assert len(dict(mirror.records())) == 10


def test_lookups_are_a_merge_join_across_chunks(sandbox: Sandbox) -> None:
    store = MemoryStore()
    mirror = Mirror(store, FIELD, ["Tier"])
    mirror.merge(((ecid(n), {"Tier": f"t{n}"}) for n in range(0, 1000, 2)), "w", chunk_rows=37)
    join = MirrorJoin(mirror)
    first = join.lookup([ecid(n) for n in range(0, 300)])  # ascending batches
    assert len(first) == 150 and first[ecid(4)] == {FIELD: ecid(4), "Tier": "t4"}
    assert len(join.lookup([ecid(n) for n in range(300, 600)])) == 150
    assert len(join.lookup([ecid(n) for n in range(100, 130)])) == 15  # a resumed batch
    assert join.lookup([ecid(5000)]) == {} and join.lookup([ecid(998)]) != {}
    source = MirrorSource(mirror)
    assert source.calls == 0 and len(source.lookup([ecid(2), ecid(3)])) == 1


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    def open(self, key: str, start: int = 0) -> Any:
        self.opened.append(key)
        return super().open(key, start)


def test_ascending_lookups_read_each_chunk_once() -> None:
    """Ids that fall between mirror rows must not send the cursor back to a chunk's start."""
    store = CountingStore()
    mirror = Mirror(store, FIELD, ["Tier"])
    mirror.merge(((ecid(n), {"Tier": f"t{n}"}) for n in range(0, 3000, 3)), "w", chunk_rows=50)
    store.opened.clear()
    join = MirrorJoin(mirror)
    found: dict[str, Any] = {}
    for start in range(0, 3000, 500):  # the run's batches: ascending, mostly not in the mirror
        found |= join.lookup([ecid(n) for n in range(start, start + 500)])
    assert sorted(found) == sorted(ecid(n) for n in range(0, 3000, 3))
    assert len(store.opened) == len(set(store.opened)) == len(mirror.index.chunks)
    store.opened.clear()
    fresh = MirrorJoin(mirror)  # ids in the last chunk only: the chunks before stay unread
    assert fresh.lookup([ecid(2997), ecid(2998)]) == {
        ecid(2997): {FIELD: ecid(2997), "Tier": "t2997"}
    }
    assert store.opened == [mirror.index.chunks[-1]["key"]]


def test_the_file_source_sorts_on_disk_and_keeps_the_first_record() -> None:
    rows: Iterator[tuple[str, dict[str, Any]]] = ((f"v{n % 50:03d}", {"n": n}) for n in range(500))
    with tempfile.TemporaryDirectory() as tmp:
        merged = list(one_per_id(sort_records(rows, tmp, run_rows=7), keep="first"))
    assert [v for v, _ in merged] == sorted({f"v{n:03d}" for n in range(50)})
    assert dict(merged)["v007"] == {"n": 7}  # the first of its 10 records
    lines = "".join(f'{{"{FIELD}": "v{n % 5}", "id": {n}}}\n' for n in range(20)).encode()
    source = FileSource(lines, "export.jsonl", FIELD, ["id"])
    assert source.lookup(["v3", "v9"]) == {"v3": {FIELD: "v3", "id": 3}}


def test_the_daily_run_joins_the_mirror_without_a_lookup_call(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from sandbox import feedgen

    world.env.update(CRM_SOURCE="marketo-mirror", MARKETO_EXPORT_POLL_SECONDS="0",
                     MIRROR_INITIAL_DAYS="40")  # fmt: skip
    rng = random.Random(8)
    record = world.deliver([feedgen.random_hits(800, rng, 300)], "2026-11-20")
    pending = world.pending(record)
    leads = world.add_leads(pending[::7])
    summary = world.invoke({})
    assert summary["crm"]["status"] == "current" and summary["crm"]["windows"] == 2
    assert [d["status"] for d in summary["deliveries"]] == ["complete"]
    assert not world.box.server.requests_to("POST", r"/rest/v1/leads\.json")  # no lookups
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(leads)
    again = world.invoke({})
    assert "crm" not in again  # synced today: a merge rewrites the mirror, not every invocation
    index = json.loads(world.state.get("mirror/index.json"))  # an hour passes
    then = dt.datetime.fromisoformat(index["watermark"].replace("Z", "+00:00"))
    index["watermark"] = (then - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    world.state.put("mirror/index.json", json.dumps(index).encode())
    today = dt.date.today().isoformat()  # a day whose visitors arrived after the watermark
    world.deliver([feedgen.random_hits(50, rng, 20)], today)
    third = world.invoke({})
    assert third["crm"]["windows"] == 1  # a delivery needs a newer copy: only since the watermark


def test_finding_9_a_lost_enqueue_answer_is_not_taken_for_a_used_up_allocation(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    """Marketo took the enqueue, the answer was lost (a 502 after handling); the repeat gets
    1029 "Job already queued" - the job's status shows it is queued: the sync goes on."""
    leads_over(sandbox, 10, days=5)
    sandbox.server.inject("POST", r"/enqueue\.json$", "status", status=502, after=True)
    report, mirror = sync(marketo, MemoryStore(), days=10)
    assert report.status == "current", report
    assert len(dict(mirror.records())) == 10
    assert len(sandbox.marketo.exports.jobs) == 1


def test_finding_9_a_lost_create_answer_does_not_make_a_second_export(
    sandbox: Sandbox, marketo: MarketoClient
) -> None:
    leads_over(sandbox, 10, days=5)
    sandbox.server.inject("POST", r"/export/create\.json$", "lose-response")
    report, mirror = sync(marketo, MemoryStore(), days=10)
    assert report.status == "current", report
    assert len(dict(mirror.records())) == 10
    assert len(sandbox.marketo.exports.jobs) == 1  # the job Marketo made was found and used


def test_finding_9_a_mirror_stopped_by_1029_makes_the_day_wait_not_miss(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from sandbox import feedgen

    world.env.update(CRM_SOURCE="marketo-mirror", MARKETO_EXPORT_POLL_SECONDS="0",
                     MIRROR_INITIAL_DAYS="40")  # fmt: skip
    rng = random.Random(9)
    record = world.deliver([feedgen.random_hits(600, rng, 200)], "2026-11-20")
    pending = world.pending(record)
    leads = world.add_leads(pending[::5])
    world.box.marketo.exports.daily_export_bytes = 0  # the allocation is used up already
    summary = world.invoke({})
    assert summary["crm"]["status"] == "allocation exhausted"
    assert [d["status"] for d in summary["deliveries"]] == ["waiting_for_crm"]
    assert world.uploaded_rows() == []
    ledger = world.table.scan()["Items"]
    assert not [i for i in ledger if str(i["pk"]).startswith("ledger#")]  # no "not found"
    report = world.report("adobe/acmeprod/acmeprod_2026-11-20")
    assert "Marketo mirror" in report["crm_wait"]
    world.box.marketo.exports.daily_export_bytes = 10**9  # the next day
    world.box.marketo.exports.exported_bytes = 0
    summary = world.invoke({})
    assert [d["status"] for d in summary["deliveries"]] == ["complete"]
    assert sorted(r[1] for r in world.uploaded_rows()) == sorted(leads)
