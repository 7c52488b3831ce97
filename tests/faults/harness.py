"""Fault injection for the daily run: the real handler against moto and the sandbox.

A *kill point* is a moment just before or just after one external call (an HTTP request to
Marketo or Adobe, an AWS API call) of a run. Killing there raises ``Killed`` - a BaseException
no cleanup catches - and from then on every external call of that invocation fails the same way,
as after a SIGKILL: no ``finally`` block can save state or release the lock. Then the run is
repeated (a new invocation; the dead holder's lease is let expire) until the delivery is done,
and what Adobe's stand-in received is checked: every matched visitor exactly once, nobody lost,
report totals equal to what Adobe received.

Calls are counted on the invoking thread only (the lock's heartbeat thread is left alone).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import botocore.client
import requests

from sandbox import feedgen
from sandbox.lambda_context import FakeLambdaContext
from sandbox.run import Sandbox
from sandbox.world import FOLDER, World

DAY = "2026-11-20"
KEY = f"{FOLDER}acmeprod_{DAY}"
DESTINATIONS = ("datasources", "bdia", "target", "aep")
AEP_FIELDS = {"_acme.crm.accountType": "string", "_acme.crm.industry": "string"}
MAX_INVOCATIONS = 12


class Killed(BaseException):
    """The invocation died here (SIGKILL, timeout): nothing after it runs."""


@dataclass
class Killer:
    """Counts external calls on one thread; kills at ``target`` (before or after the call)."""

    target: int | None = None
    after: bool = False
    calls: int = 0
    dead: bool = False
    thread: int = field(default_factory=threading.get_ident)
    log: list[str] = field(default_factory=list)
    bystander: bool = False  # the calls now are the harness's own (the state machine it plays)

    def around(self, what: str, call: Callable[[], Any]) -> Any:
        if threading.get_ident() != self.thread or self.bystander:
            return call()
        if self.dead:
            raise Killed(f"dead: {what}")
        index = self.calls
        self.calls += 1
        self.log.append(what)
        if index == self.target and not self.after:
            self.dead = True
            raise Killed(f"before call {index}: {what}")
        result = call()
        if index == self.target and self.after:
            self.dead = True
            raise Killed(f"after call {index}: {what}")
        return result


@contextmanager
def external_calls(killer: Killer) -> Iterator[Killer]:
    """Route every HTTP request and AWS API call of this process through ``killer``."""
    http = requests.Session.send
    aws = botocore.client.BaseClient._make_api_call

    def send(self: requests.Session, request: requests.PreparedRequest, **kw: Any) -> Any:
        path = (request.path_url or "").split("?")[0]
        return killer.around(f"HTTP {request.method} {path}", lambda: http(self, request, **kw))

    def api(self: Any, operation: str, params: Any) -> Any:
        name = f"AWS {self.meta.service_model.service_name}.{operation}"
        return killer.around(name, lambda: aws(self, operation, params))

    requests.Session.send = send  # type: ignore[method-assign]
    botocore.client.BaseClient._make_api_call = api  # type: ignore[method-assign]
    try:
        yield killer
    finally:
        requests.Session.send = http  # type: ignore[method-assign]
        botocore.client.BaseClient._make_api_call = aws  # type: ignore[method-assign]


VARIANTS = {
    "": "",
    "fail-after-redelivery": "Adobe holds the first generation's jobs, the day is re-delivered, "
    "then those jobs fail",
    "batch-size": "the stack's BATCH_SIZE changes (300 -> 1000) after the killed invocation",
    "late-verdicts": "Adobe decides after the last run: one batch's job fails days later",
    "give-up": "Adobe fails every file: visitors are given up after UPLOAD_MAX_ATTEMPTS=2",
    "mirror-lost-create": "marketo-mirror: the answer to the export's create is lost",
    "mirror-lost-enqueue": "marketo-mirror: the enqueue is applied, then answered 502",
    "mirror-1029": "marketo-mirror: the export allocation is used up before the join",
    "s3-export": "CRM_SOURCE=file with the export at s3://<state bucket>/crm/export.csv",
    "bdia-error": "BDIA: the first file taken ends ERROR (nothing ingested)",
    "corrupt-resend": "the day arrives corrupt (MD5/size); the run asks Adobe to resend it "
    "(FeedResendMax=1); Adobe re-delivers between runs",
    # issue 25: work in flight of an older generation, remedies, destinations changed
    "older-generation": "the kill hits the first generation's run; Adobe re-delivers the day "
    "(more visitors) before the next run",
    "lost-then-redelivery": "the first upload's answer is lost in the first generation's run, "
    "which is killed; Adobe re-delivers the day before the next run",
    "forget": "after the kill the operator forgets the delivery (refused while a batch waits "
    "for Adobe's answer) and it is parsed again",
    "retry-given-up": "Adobe fails every file until visitors are given up "
    "(UPLOAD_MAX_ATTEMPTS=2); then Adobe is fixed and the operator runs feedsync retry",
    "destination-added": "bdia is added to DESTINATIONS after the kill: it gets every matched "
    "visitor too",
    "destination-removed": "bdia is taken out of DESTINATIONS after the kill: its files are "
    "still followed to their verdict, datasources gets everyone",
    # issue 26: a delivery cut into shards, each walked by the DailyShards state machine
    "sharded": "SHARD_VISITORS=250: the day is cut into 3 shards run by the DailyShards state "
    "machine (played here: each shard again while in_progress, then the delivery); a kill in "
    "any of them fails the execution, which the next daily run starts anew",
}
# the kill hits the first generation's run (the others: the last generation's)
KILL_FIRST = ("older-generation", "lost-then-redelivery")


@dataclass
class Scenario:
    destination: str
    redelivered: bool = False  # the kill hits the run of a re-delivered (new content) day
    visitors: int = 700  # three batches of 300 (a part-empty last one)
    every: int = 4  # one visitor in `every` is in the CRM
    variant: str = ""  # one of VARIANTS: what else goes wrong around the kill

    @property
    def follow_verdicts(self) -> bool:
        """Done only once Adobe has decided on every file (the variant is about verdicts)."""
        return self.variant in (
            "fail-after-redelivery", "give-up", "bdia-error", "retry-given-up",
            "destination-removed",
        ) or self.destination == "aep"  # a batch counts once Platform says success  # fmt: skip

    @property
    def name(self) -> str:
        redelivery = "+redelivery" if self.redelivered else ""
        return f"{self.destination}{redelivery}{'+' + self.variant if self.variant else ''}"


@dataclass
class Outcome:
    scenario: str
    point: str
    invocations: int
    duplicates: int
    lost: int
    harmless_repeats: int = 0  # Target batches written twice (the same values: idempotent)
    report_mismatch: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.report_mismatch or self.errors)


def _hits(rng: random.Random, n: int, prefix: int) -> list[feedgen.Hit]:
    # Experience Cloud ids (38 digits): BDIA refuses anything else as marketingCloudVisitorID
    return [feedgen.Hit(f"{prefix}{rng.randrange(10**36):036d}") for _ in range(n)]


def _variant_env(variant: str) -> dict[str, str]:
    if variant.startswith("mirror"):
        return {"CRM_SOURCE": "marketo-mirror", "MARKETO_EXPORT_POLL_SECONDS": "0",
                "MIRROR_INITIAL_DAYS": "40"}  # fmt: skip
    if variant == "s3-export":
        return {"CRM_SOURCE": "file", "CRM_FILE": "s3://feedsync-state-world/crm/export.csv"}
    if variant in ("give-up", "retry-given-up"):
        return {"UPLOAD_MAX_ATTEMPTS": "2"}
    if variant == "destination-removed":
        return {"DESTINATIONS": "datasources,bdia"}
    if variant == "sharded":
        return {"SHARD_VISITORS": "250", "MAX_SHARDS": "3",
                "SHARD_STATE_MACHINE_ARN": _shard_machine()}  # fmt: skip
    if variant == "corrupt-resend":
        from sandbox.adobe_feeds import FEED_ID

        return {"DATA_FEED_IDS": f"acmeprod={FEED_ID}", "FEED_RESEND_MAX": "1",
                "FEED_HEALTH_DAYS": "60"}  # DAY lies weeks back  # fmt: skip
    return {}


def _shard_machine() -> str:
    """The DailyShards state machine in moto (which records executions and runs nothing:
    ``Installation.drive_shards`` plays its definition)."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    answer = sfn.create_state_machine(
        name="feedsync-daily-shards",
        definition=json.dumps({"StartAt": "Shards", "States": {}}),
        roleArn="arn:aws:iam::123456789012:role/feedsync-daily-shards",
    )
    return str(answer["stateMachineArn"])


class Installation:
    """One feedsync installation (a World) set up for a scenario."""

    def __init__(self, box: Sandbox, workdir: Path, scenario: Scenario) -> None:
        env = {
            "DESTINATIONS": scenario.destination,
            "ADOBE_SETTLE_SECONDS": "0",  # a lost answer is looked up by the very next run
            "MARKETO_CONCURRENCY": "1",  # lookups on the invoking thread: countable calls
            "BDIA_INTERVAL_SECONDS": "0",  # the sandbox does not pace here either
            "BDIA_GROUP_INTERVAL_SECONDS": "0",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            **_variant_env(scenario.variant),
        }
        self.world = World(box, workdir, env=env)
        if scenario.destination == "aep":
            from sandbox.world import MAPPING

            dataset = box.platform.add_dataset(AEP_FIELDS)
            # Platform says every documented word at random: active for success, staging,
            # queued, loaded, retrying, inactive while it processes (issue 27)
            box.platform.draw = random.Random(11)
            fields = {"Account_Type__c": "_acme.crm.accountType", "Industry": "_acme.crm.industry"}
            self.world.put_mapping({**MAPPING, "aep": {"dataset_id": dataset, "sandbox": "prod",
                                                       "fields": fields}})  # fmt: skip
        self.box = box
        self.scenario = scenario
        self.matched: set[str] = set()
        self.forgotten = False
        self.shard_executions = 0  # DailyShards executions played to their end
        self.killer: Killer | None = None  # the invocation under way's, while it runs
        self.retried = False
        # the destinations that must hold every matched visitor exactly once
        self.checked: tuple[str, ...] = (scenario.destination,)
        self.export: dict[str, dict[str, Any]] = {}
        self.generation_ids: list[str] = []
        rng = random.Random(7)
        first = _hits(rng, scenario.visitors, 10)
        self.generations = [[first[: len(first) // 2], first[len(first) // 2 :]]]
        if scenario.redelivered or scenario.variant in KILL_FIRST:
            extra = _hits(rng, scenario.visitors // 3, 20)
            self.generations.append([first[: len(first) // 2], first[len(first) // 2 :] + extra])

    def deliver(self, generation: int) -> list[str]:
        if self.scenario.variant == "corrupt-resend":
            return self._deliver_corrupt(generation)
        record = self.world.deliver(self.generations[generation], DAY)
        self.generation_ids.append(_generation_of(record))
        pending = self.world.pending(record)
        new = [v for v in pending[:: self.scenario.every] if v not in self.matched]
        leads = self.world.add_leads(new)
        self.matched.update(new)
        if self.scenario.variant == "s3-export":  # the export holds every lead so far
            self.export.update(leads)
            lines = ["Adobe_Visitor_ID,id,Account_Type__c,Industry"] + [
                f"{v},{lead['id']},{lead.get('Account_Type__c', '')},{lead.get('Industry') or ''}"
                for v, lead in sorted(self.export.items())
            ]
            self.world.state.put("crm/export.csv", ("\n".join(lines) + "\n").encode())
        return pending

    def _deliver_corrupt(self, generation: int) -> list[str]:
        """Adobe's request completed; the files arrive corrupt; a resend delivers them whole."""
        hits = self.generations[generation]
        self.box.feeds.add_request(DAY, completed_at="2020-01-01T00:00:00Z")
        self.world.deliver_to_bucket(hits, DAY, corrupt=True)
        visitors = sorted({h.visitor for files in hits for h in files})
        new = [v for v in visitors[:: self.scenario.every] if v not in self.matched]
        self.world.add_leads(new)
        self.matched.update(new)

        def whole(_request: dict[str, Any]) -> None:
            record = self.world.deliver_to_bucket(hits, DAY)
            self.generation_ids.append(_generation_of(record))

        self.box.feeds.on_delivery = whole
        return visitors

    def between(self) -> None:
        """Between two invocations: Adobe runs the resends it accepted (files land whole)."""
        if self.scenario.variant == "corrupt-resend":
            self.box.feeds.deliver_resent()

    # -- what else goes wrong around the kill (VARIANTS) ----------------------------------
    def before_first(self) -> None:
        adobe, exports = self.box.adobe, self.box.marketo.exports
        variant = self.scenario.variant
        if variant in ("fail-after-redelivery", "late-verdicts"):
            adobe.hold_jobs = True  # Adobe takes its time deciding
        elif variant in ("give-up", "retry-given-up"):
            adobe.fail_jobs.add("feedsync_")
        elif variant == "lost-then-redelivery":
            self.box.server.inject("POST", r"/datasources/job/", "lose-response")
        elif variant == "mirror-lost-create":
            self.box.server.inject("POST", r"/export/create\.json$", "lose-response")
        elif variant == "mirror-lost-enqueue":
            self.box.server.inject("POST", r"/enqueue\.json$", "status", status=502, after=True)
        elif variant == "mirror-1029":
            exports.daily_export_bytes = 0  # used up before the first join
        elif variant == "bdia-error":
            adobe.error_bdia_next = 1

    def before_kill(self) -> None:
        """After the last generation is delivered, before its (killed) first run."""
        if self.scenario.variant == "fail-after-redelivery":
            adobe = self.box.adobe
            adobe.hold_jobs = False  # the first generation's jobs fail now
            adobe.fail_jobs.add(f"_g{self.generation_ids[0][:8]}_")

    def after_kill(self) -> None:
        variant = self.scenario.variant
        if variant == "batch-size":
            self.world.env["BATCH_SIZE"] = "1000"  # the stack was updated
        elif variant == "destination-added":
            # added in the middle of the walk: bdia gets everyone; after the day was done:
            # the day is not walked again (later days and backfills have bdia)
            self.checked = (*self.checked, "bdia") if not self.done() else self.checked
            self.world.env["DESTINATIONS"] = f"{self.scenario.destination},bdia"
        elif variant == "destination-removed":
            self.world.env["DESTINATIONS"] = self.scenario.destination
        elif variant == "forget":
            self._forget()
        elif variant == "mirror-1029":
            exports = self.box.marketo.exports
            exports.daily_export_bytes, exports.exported_bytes = 10**9, 0  # the next day

    def _forget(self) -> None:
        """``feedsync forget KEY --yes`` (without --force), then the day is parsed again."""
        from feedsync.aws.runstate import DynamoRunState
        from feedsync.errors import BusyError
        from feedsync.state.forget import forget

        self._expire_locks()
        try:
            forget(self.world.state, DynamoRunState(self.world.table), KEY)
        except BusyError:
            return  # a batch is in flight: the operator is told to let the run finish it
        self.world.deliver(self.generations[-1], DAY)
        self.forgotten = True

    def _retry(self) -> bool:
        """Every matched visitor given up: Adobe is fixed, the operator runs feedsync retry."""
        from feedsync.aws.ledger import DynamoLedger
        from feedsync.aws.runstate import DynamoRunState
        from feedsync.state.retry import requeue

        adobe = self.box.adobe
        if self.retried or not self.done() or "feedsync_" not in adobe.fail_jobs:
            return False
        adobe.fail_jobs.discard("feedsync_")
        self._expire_locks()
        runs = DynamoRunState(self.world.table)
        requeue(self.world.state, runs, DynamoLedger(self.world.table, 90, 7), KEY, "operator")
        self.retried = True
        return True

    def after_done(self) -> bool:
        """Verdicts that arrive after the last run; True when there was something to follow."""
        if self.scenario.variant == "retry-given-up":
            return self._retry()
        if self.scenario.variant != "late-verdicts" or not self.box.adobe.hold_jobs:
            return False
        adobe = self.box.adobe
        adobe.hold_jobs = False
        # the second file still awaiting its verdict fails, days later (named by its file: a
        # kill may have moved a batch's visitors into a later batch, so no "_b00001_" exists)
        jobs = sorted(adobe.datasource_jobs.values(), key=lambda j: j["job_id"])
        held = [j for j in jobs if j["status"] in ("uploaded", "processing")]
        if held:
            adobe.fail_jobs.add(held[min(1, len(held) - 1)]["filename"])
        return True

    def invoke(self, killer: Killer | None = None) -> dict[str, Any] | None:
        self._expire_locks()
        context = FakeLambdaContext("EnrichUploadFunction")
        if killer is None:
            answer = self.world.invoke({}, context)
            self.drive_shards()
            return answer
        self.killer = killer
        with external_calls(killer):
            try:
                answer = self.world.invoke({}, context)
                self.drive_shards()
                return answer
            except Killed:
                self.drive_shards(failed=True)
                return None
            finally:
                self.killer = None

    def drive_shards(self, failed: bool = False) -> None:
        """Plays the DailyShards state machine (template.yaml) for every execution the daily
        run started: each shard again while it answers in_progress (busy: its lock lease runs
        out first), then the delivery once more. ``failed``: a kill ended the invocation under
        way, which fails the execution (the next daily run starts the shards anew)."""
        if self.scenario.variant != "sharded":
            return
        import boto3

        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = self.world.env["SHARD_STATE_MACHINE_ARN"]
        with self._bystander():
            executions = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")
        for execution in executions["executions"]:
            with self._bystander():
                if failed:
                    sfn.stop_execution(executionArn=execution["executionArn"], error="Killed")
                    continue
                payload = json.loads(sfn.describe_execution(
                    executionArn=execution["executionArn"])["input"])  # fmt: skip
            self.shard_executions += 1
            try:
                for item in payload["shards"]:
                    self._run_shard(item)
                self.world.invoke({"delivery": payload["delivery"]},
                                  FakeLambdaContext("EnrichUploadFunction"))  # fmt: skip
            finally:  # succeeded, or killed (moto has no FAILED: ABORTED reads the same)
                with self._bystander():
                    sfn.stop_execution(executionArn=execution["executionArn"])

    @contextmanager
    def _bystander(self) -> Iterator[None]:
        """The harness's own calls (playing Step Functions) are no kill points."""
        killer = self.killer
        if killer is None:
            yield
            return
        killer.bystander = True
        try:
            yield
        finally:
            killer.bystander = False

    def _run_shard(self, item: dict[str, Any]) -> None:
        for _ in range(MAX_INVOCATIONS * 4):
            answer = self.world.invoke(item, FakeLambdaContext("EnrichUploadFunction"))
            status = answer.get("shard_status")
            if status == "busy":
                self._expire_locks()
            elif status != "in_progress":
                return
        raise AssertionError(f"shard {item} still in progress")

    def completed_twice(self) -> int:
        """Platform batches completed more than once (aep): never allowed."""
        return sum(1 for n in self.box.platform.completes.values() if n > 1)

    def _expire_locks(self) -> None:
        """A dead invocation's leases end: its run and reconcile locks (60 s in production)
        and its Marketo concurrency slot (120 s); here at once, as if the next invocation came
        later. (Exact keys: a scan of the whole table would cost more than the run.)"""
        host = self.world.env["MARKETO_BASE_URL"].split("://", 1)[-1].split("/")[0]
        shards = [{"pk": f"delivery#{KEY}#s{n}", "sk": "lock"} for n in range(3)]
        for key in (*shards, {"pk": f"delivery#{KEY}", "sk": "lock"},
                    {"pk": "delivery#feeds/health", "sk": "lock"},
                    {"pk": "delivery#reconcile", "sk": "lock"},
                    {"pk": f"ratelimit#marketo#{host}", "sk": "state"}):  # fmt: skip
            self.world.table.delete_item(Key=key)

    def done(self) -> bool:
        """The latest content generation is enriched (its marker and its report say so)."""
        from feedsync.daily.select import generation

        state = self.world.state
        record = json.loads(state.get(f"deliveries/{KEY}.json") or b"{}")
        marker = json.loads(state.get(f"enriched/{KEY}") or b"{}")
        report = json.loads(state.get(f"reports/{KEY}.json") or b"{}")
        current = generation(record) if record else None
        late = self.scenario.variant == "late-verdicts" and not self.box.adobe.hold_jobs
        follow = self.scenario.follow_verdicts or late
        decided = not follow or not (report.get("adobe") or {}).get("awaiting_verdict")
        return (
            marker.get("generation") == current
            and report.get("generation") == current
            and report.get("status") in ("complete", "given_up")
            and decided
        )

    def received(self, destination: str = "") -> Counter[str]:
        """Visitor -> rows Adobe's stand-in holds for them at this destination."""
        adobe = self.box.adobe
        out: Counter[str] = Counter()
        destination = destination or self.scenario.destination
        if destination == "datasources":
            for job_id, data in adobe.datasource_files.items():
                if adobe.datasource_jobs[job_id]["status"] == "failure":
                    continue
                lines = [x for x in data.decode().splitlines() if x and not x.startswith("#")]
                out.update(line.split("\t")[1] for line in lines[1:])
        elif destination == "bdia":
            import csv
            import gzip
            import io

            for data in adobe.bdia_files.values():
                rows = csv.DictReader(io.StringIO(gzip.decompress(data).decode()))
                out.update(r["marketingCloudVisitorID"] for r in rows)
        elif destination == "aep":
            records = self.box.platform.ingested()
            out.update(r["identityMap"]["ECID"][0]["id"] for r in records)
        else:
            out.update(self._target_rows())
        return out

    def _target_rows(self) -> Counter[str]:
        """thirdPartyId (CRM id) -> visitor, counted once per accepted batch row."""
        by_crm_id = {str(self.box.marketo.leads[v][0]["id"]): v for v in self.matched}
        out: Counter[str] = Counter()
        for request in self.box.server.requests_to("POST", r"/v2/profile/batchUpdate$"):
            lines = request.body[len("batch=") :].decode().splitlines()[1:]
            out.update(by_crm_id.get(unquote(line.split(",")[0]), "?") for line in lines)
        return out

    def variant_happened(self) -> str:
        """'' when what the variant scripts did happen (a failed job, an ERROR, a 1029...)."""
        adobe, variant = self.box.adobe, self.scenario.variant
        statuses = [j["status"] for j in adobe.datasource_jobs.values()]
        if variant in ("fail-after-redelivery", "late-verdicts", "give-up"):
            return "" if "failure" in statuses else "no Data Sources job failed"
        if variant == "bdia-error":
            codes = [k.get("status_code") for k in adobe.bdia_ingested.values()]
            return "" if "ERROR" in codes else "no BDIA file ended ERROR"
        if variant == "corrupt-resend":
            asked = len(self.box.feeds.asked)
            return "" if asked == 1 else f"{asked} resends asked of Adobe (the cap is 1)"
        if variant == "retry-given-up":
            return "" if self.retried else "nobody was given up, so nothing was retried"
        if variant.startswith("mirror"):
            jobs = self.box.marketo.exports.jobs
            return "" if len(jobs) >= 1 else "the mirror made no export"
        if variant == "sharded":
            return "" if self.shard_executions else "no delivery was cut into shards"
        return ""

    def tally_drift(self) -> list[str]:
        """The kept tallies against a recount from the file records and the ledger."""
        from feedsync.aws.ledger import DynamoLedger
        from feedsync.aws.runstate import DynamoRunState
        from feedsync.views.rebuild import differences, recount

        runs = DynamoRunState(self.world.table)
        kept = {**runs.counters(KEY, "tally#"), **runs.counters(KEY, "batch#")}
        truth = recount(self.world.state, runs, DynamoLedger(self.world.table, 90, 7), KEY,
                        "acmeprod")  # fmt: skip
        return differences(kept, truth)

    def report(self) -> dict[str, Any]:
        return dict(json.loads(self.world.state.get(f"reports/{KEY}.json") or b"{}"))

    def sends(self) -> Counter[str]:
        """Visitor -> files it was sent in, failed ones included (Data Sources)."""
        adobe = self.box.adobe
        out: Counter[str] = Counter()
        for data in adobe.datasource_files.values():
            lines = [x for x in data.decode().splitlines() if x and not x.startswith("#")]
            out.update(line.split("\t")[1] for line in lines[1:])
        return out


def _generation_of(record: dict[str, Any]) -> str:
    from feedsync.daily.select import generation

    return generation(record)


def check(install: Installation, scenario: str, point: str, invocations: int) -> Outcome:
    """Adobe holds every matched visitor exactly once (or, given up, none after exactly
    UPLOAD_MAX_ATTEMPTS sends), and the report says the same figures."""
    rows = install.received()
    duplicates = sum(n - 1 for v, n in rows.items() if n > 1)
    harmless = 0
    if install.scenario.destination == "target":
        harmless, duplicates = duplicates, 0
    given_up: set[str] = set()
    outcome = Outcome(scenario, point, invocations, duplicates, 0, harmless)
    for other in install.checked[1:]:
        got = install.received(other)
        outcome.duplicates += sum(n - 1 for n in got.values() if n > 1)
        outcome.lost += len(install.matched - set(got))
    if install.scenario.variant.startswith("destination-"):  # nobody twice, wherever
        bdia = install.received("bdia")
        outcome.duplicates += sum(n - 1 for n in bdia.values() if n > 1)
    if install.scenario.variant == "give-up":
        given_up = set(install.matched)
        sends = install.sends()
        wrong = {v: n for v, n in sends.items() if n != 2}
        if wrong:
            outcome.errors.append(f"sent other than twice before the give-up: {len(wrong)}")
    if install.scenario.destination == "aep" and install.completed_twice():
        outcome.errors.append(f"{install.completed_twice()} Platform batches completed twice")
    happened = install.variant_happened()
    if happened:
        outcome.errors.append(happened)
    outcome.lost += len(install.matched - set(rows) - given_up)
    report = install.report()
    adobe = report.get("adobe") or {}
    expected = {"uploaded_rows": len(set(rows)), "given_up": len(given_up)}
    reported = {"uploaded_rows": _at_adobe(install, report),
                "given_up": adobe.get("visitors_given_up")}  # fmt: skip
    if reported != expected:
        outcome.report_mismatch = True
        outcome.errors.append(f"report {reported} != ground truth {expected}")
    drift = install.tally_drift()
    if drift:  # the counters the runs kept are a cache: they must equal the recount
        outcome.report_mismatch = True
        outcome.errors.append(f"tallies departed from the ledger: {drift[:3]}")
    return outcome


def _at_adobe(install: Installation, report: dict[str, Any]) -> int:
    """What the report says Adobe holds of the scenario's destination: its visitors accepted or
    awaiting a verdict (a forget keeps what was sent, so the report still counts it)."""
    counts = (report.get("visitors") or {}).get(install.scenario.destination) or {}
    return sum(counts.get(k, 0) for k in ("accepted", "sent", "stuck"))


def run_with_kill(install: Installation, target: int | None, after: bool) -> tuple[int, int]:
    """Kill the last generation's first run at ``target``; repeat until done (and, when
    Adobe decides later, until done again).

    Returns (external calls counted in the first invocation, invocations used)."""
    install.before_first()
    killer = Killer(target, after)
    if install.scenario.variant in KILL_FIRST:  # the older generation's run is the one killed
        install.deliver(0)
        install.invoke(killer)
        for generation in range(1, len(install.generations)):
            install.deliver(generation)
    else:
        for generation in range(len(install.generations) - 1):
            install.deliver(generation)
            install.invoke()
        install.deliver(len(install.generations) - 1)
        install.before_kill()
        install.invoke(killer)
    install.after_kill()
    invocations = 1
    while invocations < MAX_INVOCATIONS and (not install.done() or install.after_done()):
        install.between()
        install.invoke()
        invocations += 1
    return killer.calls, invocations
