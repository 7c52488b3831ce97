"""The daily run over in-memory fakes (no moto, no HTTP): exactly once per content generation,
refused rows counted, poison isolated, Adobe's verdict followed, short leases, settle, re-runs;
the ledger as the one truth (retries from the ledger across generations, resumes by position,
reports that follow Adobe's verdicts, distinct-visitor figures, dry runs apart).

Each test names the hole or finding it closes; it failed before the fix.
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
from feedsync.state.ledger import VisitorState
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
    entries = rig.ledger.entries("acmeprod", "datasources", visitors)
    # a refused row is never claimed: no ledger write; its reason is kept in S3 beside the batch
    assert "poison;id" not in entries and "tab\tid" not in entries
    refused = [k for k in rig.state.objects if k.endswith(".datasources.refused.jsonl")]
    assert len(refused) == 1 and b"';'" in rig.state.objects[refused[0]]
    # the sent ones keep their claim; the file record, not each entry, says they were sent
    assert {e.state for v, e in entries.items() if v.isdigit()} == {VisitorState.PLANNED}
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
    assert retried == [first_files[1].split("_b")[0] + "_b00003_p1.txt"]  # a new batch
    report = rig.report()
    assert report["status"] == "complete" and report["retry_batches"] == []
    assert report["retries"]["resent"] == 50 and report["matched"] == 120  # not 170
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
    entries = rig.ledger.entries("acmeprod", "datasources", visitors)
    assert {e.state for e in entries.values()} == {VisitorState.GIVEN_UP}
    assert {e.reason for e in entries.values()} == {"Adobe: failure"}
    assert rig.adobe.sends == 2  # max_attempts=2
    assert rig.counted[metrics.VISITORS_GIVEN_UP] == 10
    # finding 4: the give-up shows in the report, with Adobe's reason
    report = rig.report()
    assert report["adobe"]["visitors_given_up"] == 10
    assert report["outcome"] == "10 given up"
    assert report["given_up"][0]["reason"] == "Adobe: failure"


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
    rig.runs.acquire(KEY, "killed-invocation", 60)
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
    rig.runs.acquire(KEY, "killed-invocation", 60)
    rig.clock.now += 61
    assert rig.run(owner="run-2")["deliveries"][0]["status"] == "complete"


def test_break_lock_leaves_a_live_holder_alone(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(1)])
    rig.runs.acquire(KEY, "alive", 60)
    rig.clock.now += 5
    busy = rig.run(owner="run-2", break_lock=True)["deliveries"][0]
    assert busy["status"] == "busy" and "5 s ago, so --break-lock leaves it" in busy["error"]
    assert "--break-lock takes over in 35 s" in busy["error"]  # two missed 20 s heartbeats


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


# --- the one-truth issue: findings between runs ---------------------------------------------


def test_finding_1_a_failure_after_a_redelivery_is_resent_from_the_ledger(rig: Rig) -> None:
    first = [ecid(n) for n in range(80)]
    memory_delivery(rig.state, first, content="aaaa")
    leads(rig, first)
    rig.run()  # generation 1 uploaded; Adobe keeps its jobs processing
    first_files = set(rig.adobe.received)
    for name in rig.adobe.received:
        rig.adobe.verdicts[name] = PENDING
    second = first + [ecid(n) for n in range(100, 160)]
    memory_delivery(rig.state, second, content="bbbb")  # re-delivered before Adobe's verdict
    leads(rig, second[80:])
    rig.run()
    assert set(rig.rows_at_adobe()) == set(second)
    for name in list(rig.adobe.received):
        rig.adobe.verdicts[name] = FAILED if name in first_files else "accepted"
    summary = rig.run()  # the first generation's jobs fail now
    assert summary["reconciliation"]["released"] == 80
    resent = {v for v, n in rig.rows_at_adobe().items() if n == 2}
    assert resent == set(first)  # every released visitor sent again, by the current run
    entries = rig.ledger.entries("acmeprod", "datasources", second)
    assert not [v for v, e in entries.items() if e.state is VisitorState.RETRY]
    report = rig.report()
    assert report["status"] == "complete"
    assert report["adobe"]["visitors_awaiting_resend"] == 0
    assert report["visitors"]["datasources"].get("retry", 0) == 0


def test_finding_1_the_report_is_not_complete_while_visitors_await_a_resend(rig: Rig) -> None:
    visitors = [ecid(n) for n in range(30)]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors)
    rig.run()
    rig.adobe.verdicts[next(iter(rig.adobe.received))] = FAILED
    ports = rig.ports()
    from feedsync.daily.run import reconcile

    reconcile(ports, rig.settings)  # `feedsync reconcile` alone: no run walks the day
    report = rig.report()
    assert report["status"] == "awaiting_resend" and "30 awaiting a re-send" in report["outcome"]
    assert get_json(rig.state, f"enriched/{KEY}") is None  # the next run picks the day again


def test_finding_2_a_resume_with_another_batch_size_skips_and_repeats_nobody(rig: Rig) -> None:
    visitors = [ecid(n) for n in range(250)]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors[::2])
    rig.settings = EnrichSettings(batch_size=30, settle_seconds=0)
    budget = iter([10_000.0, 0.0])  # time for one batch, then the invocation runs short
    ports = rig.ports()
    summary = run_daily(ports, rig.settings, RunRequest(), Deadline(lambda: next(budget, 0.0)))
    assert summary["deliveries"][0]["status"] == "in_progress"
    assert rig.crm.calls == 1  # one batch of 30 looked up
    rig.settings = EnrichSettings(batch_size=100, settle_seconds=0)  # the stack was updated
    rig.run()
    assert rig.report()["status"] == "complete"
    rows = rig.rows_at_adobe()
    assert set(rows) == set(visitors[::2]) and max(rows.values()) == 1
    report = rig.report()
    assert report["pending"] == 250 and report["looked_up"] == 250 and report["matched"] == 125


def test_finding_5_reports_follow_adobes_verdict_without_another_walk(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(n) for n in range(20)])
    leads(rig, [ecid(n) for n in range(20)])
    rig.run()
    report = rig.report()
    assert report["adobe"]["visitors_awaiting_verdict"] == 20
    assert "20 awaiting Adobe's verdict" in report["outcome"]
    rig.run()  # the next day's run: reconciliation reads the verdict (success)
    report = rig.report()
    assert report["adobe"]["visitors_accepted"] == 20
    assert report["adobe"]["visitors_awaiting_verdict"] == 0
    assert report["outcome"] == "accepted by Adobe (20 visitors)"
    assert report["verdicts"][0]["status"] == "success"


def test_finding_7_a_dry_run_is_written_apart_and_reads_as_one(rig: Rig) -> None:
    memory_delivery(rig.state, [ecid(n) for n in range(10)])
    leads(rig, [ecid(n) for n in range(10)])
    summary = rig.run(dry_run=True, run_id="dry1")
    assert summary["dry_run"] is True
    assert rig.adobe.sends == 0 and rig.ledger.items == {}
    dry = get_json(rig.state, f"reports/dry-run/dry1/{KEY}.json")
    assert dry is not None and dry["dry_run"] is True
    assert dry["outcome"] == "dry run: nothing sent" and dry["adobe"]["files_sent"] == 0
    assert get_json(rig.state, f"reports/{KEY}.json") is None  # the real report is untouched
    html = rig.state.get(f"reports/dry-run/dry1/{KEY}.html") or b""
    assert b"DRY RUN" in html
    rig.run()  # the real run afterwards sends everyone
    assert len(rig.rows_at_adobe()) == 10


def test_finding_9_misses_wait_while_the_crm_copy_is_older_than_the_day(rig: Rig) -> None:
    import datetime as dt

    memory_delivery(rig.state, [ecid(n) for n in range(10)])
    leads(rig, [ecid(n) for n in range(10)])
    rig.crm.lookups_cost_calls = False  # a mirror
    rig.crm.copy_as_of = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)  # the sync stopped early
    summary = rig.run()
    assert summary["deliveries"][0]["status"] == "waiting_for_crm"
    assert rig.crm.calls == 0 and rig.ledger.items == {}  # nobody recorded "not found"
    assert "2026-11-19" in rig.report()["crm_wait"]
    assert get_json(rig.state, f"enriched/{KEY}") is None
    rig.crm.copy_as_of = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)  # the mirror caught up
    rig.run()
    assert len(rig.rows_at_adobe()) == 10 and rig.report()["status"] == "complete"


def test_two_invocations_never_both_send_a_visitor(rig: Rig) -> None:
    """Another invocation (another delivery of the same suite) claimed a visitor between our
    lookup and our claim: the claim's condition fails and we leave the visitor to it."""
    from feedsync.state.ledger import claim

    visitors = [ecid(n) for n in range(5)]
    memory_delivery(rig.state, visitors)
    leads(rig, visitors)
    real_move = rig.ledger.move

    def racing_move(rsid: str, destination: str, moves: Any) -> set[str]:
        if any(m.entry.state is VisitorState.PLANNED for m in moves):
            other = claim(ecid(2), None, "adobe/acmeprod/acmeprod_2026-11-21", "other#00000")
            real_move(rsid, destination, [other])
        return real_move(rsid, destination, moves)

    rig.ledger.move = racing_move  # type: ignore[method-assign]
    rig.run()
    assert set(rig.rows_at_adobe()) == set(visitors) - {ecid(2)}
    assert rig.ledger.entries("acmeprod", "datasources", [ecid(2)])[ecid(2)].claim == "other#00000"
