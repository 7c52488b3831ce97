"""The daily run over in-memory fakes (no moto, no HTTP): exactly once per content generation,
refused rows counted, poison isolated, Adobe's verdict followed, short leases, settle, re-runs.

Each test names the hole of the daily-run issue it closes; it failed before the fix.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from feedsync import metrics
from feedsync.daily.destinations import Destination
from feedsync.daily.destinations.base import FAILED, PENDING
from feedsync.daily.destinations.datasources import DataSourcesFiles
from feedsync.daily.mapping import Mapping
from feedsync.daily.run import EnrichPorts, run_daily
from feedsync.deadline import Deadline
from feedsync.settings import EnrichSettings, RunRequest
from feedsync.state.records import LedgerStatus
from feedsync.storage import MemoryStore, get_json
from tests.fakes import (
    AdobeFake,
    FakeCrm,
    FakeSender,
    MemoryLedger,
    MemoryRunState,
    MemoryUploadLog,
    memory_delivery,
)

KEY = "adobe/acmeprod/acmeprod_2026-11-20"
MAPPING = {
    "visitor_id_field": "Adobe_Visitor_ID",
    "success_event": "Event 51",
    "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23"},
}


def ecid(n: int) -> str:
    return f"{n:038d}"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    clock: Clock = field(default_factory=Clock)
    state: MemoryStore = field(default_factory=MemoryStore)
    crm: FakeCrm = field(default_factory=FakeCrm)
    adobe: AdobeFake = field(default_factory=AdobeFake)
    counted: Counter[str] = field(default_factory=Counter)
    settings: EnrichSettings = field(
        default_factory=lambda: EnrichSettings(batch_size=50, settle_seconds=600.0, max_attempts=2)
    )

    def __post_init__(self) -> None:
        self.adobe.clock = self.clock
        self.ledger = MemoryLedger(clock=self.clock)
        self.runs = MemoryRunState(clock=self.clock)
        self.uploads = MemoryUploadLog()

    def ports(self, owner: str = "run-1") -> EnrichPorts:
        sender = FakeSender("datasources", self.adobe)
        return EnrichPorts(
            state=self.state,
            ledger=self.ledger,
            runs=self.runs,
            uploads=self.uploads,
            crm=self.crm,
            mapping=Mapping.from_json(json.dumps(MAPPING), "mapping"),
            destinations=[Destination("datasources", DataSourcesFiles(), sender)],
            metric=lambda name, value: self.counted.update({name: int(value)}),
            owner=owner,
            clock=self.clock,
        )

    def run(self, owner: str = "run-1", **event: Any) -> dict[str, Any]:
        return run_daily(self.ports(owner), self.settings, RunRequest.from_event(event), Deadline())

    def report(self) -> dict[str, Any]:
        report = get_json(self.state, f"reports/{KEY}.json")
        assert report is not None
        return report

    def rows_at_adobe(self) -> Counter[str]:
        """Visitor -> how many rows of theirs Adobe holds, across every file it took."""
        out: Counter[str] = Counter()
        for data in self.adobe.received.values():
            lines = [x for x in data.decode().splitlines() if x and not x.startswith("#")]
            out.update(line.split("\t")[1] for line in lines[1:])
        return out


@pytest.fixture
def rig() -> Rig:
    return Rig()


def leads(rig: Rig, visitors: list[str]) -> None:
    for n, visitor in enumerate(visitors):
        rig.crm.records[visitor] = {
            "Adobe_Visitor_ID": visitor,
            "id": 1000 + n,
            "Account_Type__c": "Customer",
        }


# --- hole 1: a re-delivered day + one failed upload ------------------------------------------


def test_redelivered_generation_after_a_refused_upload_reaches_adobe(rig: Rig) -> None:
    first = [ecid(n) for n in range(100)]
    memory_delivery(rig.state, first, content="aaaa")
    leads(rig, first[::2])
    rig.run()
    assert set(rig.rows_at_adobe()) == set(first[::2])
    # Adobe re-sends the day with new content: 50 new visitors, all matched
    second = first + [ecid(n) for n in range(100, 150)]
    memory_delivery(rig.state, second, content="bbbb")
    leads(rig, second[100:])
    rig.adobe.refuse_next = 1  # HTTP 500: Adobe did not take the new generation's first file
    summary = rig.run()
    assert summary["deliveries"][0]["status"] == "waiting"  # not "complete": one file is out
    rig.clock.now += 601  # past the settle time, a later run looks again and sends it
    rig.run()
    rows = rig.rows_at_adobe()
    assert set(rows) == set(first[::2]) | set(second[100:])
    assert max(rows.values()) == 1  # nobody twice
    names = list(rig.adobe.received)
    assert len({n.split("_g")[1][:8] for n in names}) == 2  # the generation is in every name
    assert rig.report()["status"] == "complete"


# --- hole 2: rows refused while building files ------------------------------------------------


def test_rows_refused_by_the_file_rules_are_counted_and_not_in_the_ledger(rig: Rig) -> None:
    visitors = [ecid(n) for n in range(10)] + ["poison;id", "tab\tid"]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors)
    rig.run()
    report = rig.report()
    assert report["uploaded_rows"] == 10 and report["rejected"] == 2
    reasons = {s["visitor"]: s["reason"] for s in report["rejected_samples"]}
    assert reasons["poison;id"] == "datasources: transactionID value holds ';'"
    assert "tab or a line break" in reasons["tab\tid"]
    assert rig.counted[metrics.ROWS_REJECTED] == 2
    entries = rig.ledger.entries("acmeprod", visitors)
    assert entries["poison;id"].status is LedgerStatus.REJECTED
    assert {e.status for v, e in entries.items() if v.isdigit()} == {LedgerStatus.UPLOADED}
    assert "poison;id" not in rig.rows_at_adobe()


# --- hole 3: one poison value blocks everything -----------------------------------------------


def test_an_error_in_one_delivery_is_recorded_and_the_run_goes_on(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1), ecid(2)], day="2026-11-19")
    memory_delivery(rig.state, [ecid(3)], day="2026-11-20")
    leads(rig, [ecid(1), ecid(2), ecid(3)])

    class Broken(FakeSender):
        def send(self, batch: Any, upload: Any) -> Any:
            if "2026-11-19" in upload.name:
                from feedsync.adobe.errors import AdobeApiError

                raise AdobeApiError("fake", "the file is refused", status=400)
            return super().send(batch, upload)

    ports = rig.ports()
    ports.destinations = [
        Destination("datasources", DataSourcesFiles(), Broken("datasources", rig.adobe))
    ]
    summary = run_daily(ports, rig.settings, RunRequest(), Deadline())
    statuses = {d["key"].rsplit("_", 1)[1]: d["status"] for d in summary["deliveries"]}
    assert statuses == {"2026-11-19": "failed", "2026-11-20": "complete"}
    assert rig.counted[metrics.DELIVERY_RUNS_FAILED] == 1
    failed = get_json(rig.state, "reports/adobe/acmeprod/acmeprod_2026-11-19.json")
    assert failed is not None and "the file is refused" in failed["error"]
    assert set(rig.rows_at_adobe()) == {ecid(3)}


# --- hole 4: Adobe's verdict ------------------------------------------------------------------


def test_a_failed_job_releases_its_visitors_and_the_next_run_sends_them_again(rig: Rig) -> None:
    visitors = [ecid(n) for n in range(120)]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors)
    rig.run()
    first_files = sorted(rig.adobe.received)
    assert len(first_files) == 3  # batches of 50
    rig.adobe.verdicts[first_files[1]] = FAILED  # Adobe's job for batch 1 ends in failure
    summary = rig.run()
    reconciled = summary["reconciliation"]
    assert reconciled["failed"] == 1 and reconciled["released"] == 50
    assert rig.counted[metrics.UPLOADS_FAILED] == 1
    retried = [n for n in rig.adobe.received if n not in first_files]
    assert retried == [first_files[1].replace("_p1.txt", "_a2_p1.txt")]
    report = rig.report()
    assert report["status"] == "complete" and report["retry_batches"] == []
    failure = [v for v in report["verdicts"] if v["outcome"] == "failed"]
    assert failure[0]["file"] == first_files[1] and failure[0]["status"] == "failure"
    assert failure[0]["visitors"] == 50
    assert report["this_run"]["rows_sent"] == 50 and report["this_run"]["retried"] == 1


def test_visitors_are_given_up_after_max_attempts(rig: Rig) -> None:
    visitors = [ecid(n) for n in range(10)]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors)
    rig.run()
    rounds = []
    for _ in range(2):  # every attempt fails at Adobe
        for name in rig.adobe.received:
            rig.adobe.verdicts[name] = FAILED
        rounds.append(rig.run()["reconciliation"])
    assert [r["released"] for r in rounds] == [10, 0]
    assert [r["given_up"] for r in rounds] == [0, 10]
    entries = rig.ledger.entries("acmeprod", visitors)
    assert {e.status for e in entries.values()} == {LedgerStatus.FAILED}
    assert rig.adobe.sends == 2  # max_attempts=2
    assert rig.counted[metrics.VISITORS_GIVEN_UP] == 10


def test_a_job_processing_too_long_is_reported_stuck(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1)])
    leads(rig, [ecid(1)])
    rig.run()
    rig.adobe.verdicts[next(iter(rig.adobe.received))] = PENDING
    assert rig.run()["reconciliation"]["pending"] == 1
    rig.clock.now += 25 * 3600
    summary = rig.run()
    assert summary["reconciliation"]["stuck"] == 1
    assert rig.counted[metrics.UPLOADS_STUCK] == 1
    assert len(rig.uploads.open) == 1  # still watched


# --- hole 5: a crash leaves the delivery locked -----------------------------------------------


def test_a_dead_holders_lock_ends_with_its_short_lease_and_says_who_held_it(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1)])
    leads(rig, [ecid(1)])
    rig.runs.acquire(f"{KEY}@" + _generation(rig), "killed-invocation", 60)
    busy = rig.run(owner="run-2")["deliveries"][0]
    assert busy["status"] == "busy"
    assert "held by killed-invocation until" in busy["error"] and "--break-lock" in busy["error"]
    rig.clock.now += 30  # its heartbeat stopped 30 s ago; the lease (60 s) still holds
    assert rig.run(owner="run-2")["deliveries"][0]["status"] == "busy"
    rig.clock.now += 15  # 45 s: more than two missed heartbeats (2 x 20 s)
    taken = rig.run(owner="run-2", break_lock=True)["deliveries"][0]
    assert taken["status"] == "complete"


def test_without_break_lock_the_lease_of_a_dead_holder_ends_by_itself(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1)])
    rig.runs.acquire(f"{KEY}@" + _generation(rig), "killed-invocation", 60)
    rig.clock.now += 61
    assert rig.run(owner="run-2")["deliveries"][0]["status"] == "complete"


def test_break_lock_leaves_a_live_holder_alone(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1)])
    rig.runs.acquire(f"{KEY}@" + _generation(rig), "alive", 60)
    rig.clock.now += 5
    busy = rig.run(owner="run-2", break_lock=True)["deliveries"][0]
    assert busy["status"] == "busy" and "alive, so --break-lock leaves it" in busy["error"]


def _generation(rig: Rig) -> str:
    from feedsync.daily.select import generation

    data = get_json(rig.state, f"deliveries/{KEY}.json")
    assert data is not None
    return generation(data)


# --- hole 6: a slow Adobe lists a job late ----------------------------------------------------


def test_a_lost_answer_is_looked_up_in_a_later_run_not_re_sent_at_once(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(n) for n in range(10)])
    leads(rig, [ecid(n) for n in range(10)])
    rig.adobe.lose_next = 1  # Adobe took the file; the answer was lost
    rig.adobe.lists_after = 300  # and lists the job only 5 minutes later
    assert rig.run()["deliveries"][0]["status"] == "waiting"
    assert rig.adobe.sends == 1
    rig.clock.now += 10
    assert rig.run()["deliveries"][0]["status"] == "waiting"  # not listed, within settle: wait
    assert rig.adobe.sends == 1
    rig.clock.now += 400
    assert rig.run()["deliveries"][0]["status"] == "complete"  # listed now: found, not re-sent
    assert rig.adobe.sends == 1 and max(rig.rows_at_adobe().values()) == 1


# --- hole 7: re-run summaries --------------------------------------------------------------------


def test_a_re_run_reports_what_it_did_apart_from_the_delivery_totals(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(n) for n in range(60)])
    leads(rig, [ecid(n) for n in range(0, 60, 3)])
    first = rig.run()["deliveries"][0]
    assert first["this_run"]["rows_sent"] == 20 and first["this_run"]["jobs_created"] == 2
    again = rig.run(delivery=KEY)["deliveries"][0]
    assert again["uploaded_rows"] == 20  # the delivery's totals
    assert again["this_run"] == {
        "batches": 0,
        "resumed": 0,
        "retried": 0,
        "crm_calls": 0,
        "looked_up": 0,
        "matched": 0,
        "rows_sent": 0,
        "rejected": 0,
        "jobs_created": 0,
    }
    assert rig.report()["delivery_totals"]["uploaded_rows"] == 20
