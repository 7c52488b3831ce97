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
DESTINATIONS = ("datasources", "bdia", "target")
MAX_INVOCATIONS = 8


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

    def around(self, what: str, call: Callable[[], Any]) -> Any:
        if threading.get_ident() != self.thread:
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


@dataclass
class Scenario:
    destination: str
    redelivered: bool = False  # the kill hits the run of a re-delivered (new content) day
    visitors: int = 700  # three batches of 300 (a part-empty last one)
    every: int = 4  # one visitor in `every` is in the CRM

    @property
    def name(self) -> str:
        return f"{self.destination}{'+redelivery' if self.redelivered else ''}"


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


class Installation:
    """One feedsync installation (a World) set up for a scenario."""

    def __init__(self, box: Sandbox, workdir: Path, scenario: Scenario) -> None:
        env = {
            "DESTINATIONS": scenario.destination,
            "MARKETO_CONCURRENCY": "1",  # lookups on the invoking thread: countable calls
            "ADOBE_SETTLE_SECONDS": "0",  # a lost answer is looked up by the very next run
            "BDIA_INTERVAL_SECONDS": "0",  # the sandbox does not pace here either
            "BDIA_GROUP_INTERVAL_SECONDS": "0",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        self.world = World(box, workdir, env=env)
        self.box = box
        self.scenario = scenario
        self.matched: set[str] = set()
        rng = random.Random(7)
        first = _hits(rng, scenario.visitors, 10)
        self.generations = [[first[: len(first) // 2], first[len(first) // 2 :]]]
        if scenario.redelivered:
            extra = _hits(rng, scenario.visitors // 3, 20)
            self.generations.append([first[: len(first) // 2], first[len(first) // 2 :] + extra])

    def deliver(self, generation: int) -> list[str]:
        record = self.world.deliver(self.generations[generation], DAY)
        pending = self.world.pending(record)
        new = [v for v in pending[:: self.scenario.every] if v not in self.matched]
        self.world.add_leads(new)
        self.matched.update(new)
        return pending

    def invoke(self, killer: Killer | None = None) -> dict[str, Any] | None:
        self._expire_locks()
        context = FakeLambdaContext("EnrichUploadFunction")
        if killer is None:
            return self.world.invoke({}, context)
        with external_calls(killer):
            try:
                return self.world.invoke({}, context)
            except Killed:
                return None

    def _expire_locks(self) -> None:
        """A dead invocation's leases end: its run lock (60 s in production) and its Marketo
        concurrency slot (120 s); here at once, as if the next invocation came later."""
        items = self.world.table.scan().get("Items", [])
        for item in items:
            if item.get("sk") == "lock" or str(item.get("pk")).startswith("ratelimit#"):
                self.world.table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})

    def done(self) -> bool:
        """The latest content generation is enriched (its marker and its report say so)."""
        from feedsync.daily.select import generation

        state = self.world.state
        record = json.loads(state.get(f"deliveries/{KEY}.json") or b"{}")
        marker = json.loads(state.get(f"enriched/{KEY}") or b"{}")
        report = json.loads(state.get(f"reports/{KEY}.json") or b"{}")
        current = generation(record) if record else None
        return (
            marker.get("generation") == current
            and report.get("generation") == current
            and report.get("status") == "complete"
        )

    def received(self) -> Counter[str]:
        """Visitor -> rows Adobe's stand-in holds for them at this destination."""
        adobe = self.box.adobe
        out: Counter[str] = Counter()
        if self.scenario.destination == "datasources":
            for job_id, data in adobe.datasource_files.items():
                if adobe.datasource_jobs[job_id]["status"] == "failure":
                    continue
                lines = [x for x in data.decode().splitlines() if x and not x.startswith("#")]
                out.update(line.split("\t")[1] for line in lines[1:])
        elif self.scenario.destination == "bdia":
            import csv
            import gzip
            import io

            for data in adobe.bdia_files.values():
                rows = csv.DictReader(io.StringIO(gzip.decompress(data).decode()))
                out.update(r["marketingCloudVisitorID"] for r in rows)
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

    def reported_rows(self) -> int:
        report = json.loads(self.world.state.get(f"reports/{KEY}.json") or b"{}")
        return int(report.get("uploaded_rows", -1))


def check(install: Installation, scenario: str, point: str, invocations: int) -> Outcome:
    rows = install.received()
    duplicates = sum(n - 1 for v, n in rows.items() if n > 1)
    harmless = 0
    if install.scenario.destination == "target":
        harmless, duplicates = duplicates, 0
    lost = len(install.matched - set(rows))
    outcome = Outcome(scenario, point, invocations, duplicates, lost, harmless)
    if not install.scenario.redelivered and install.scenario.destination != "target":
        outcome.report_mismatch = install.reported_rows() != sum(rows.values())
    return outcome


def run_with_kill(install: Installation, target: int | None, after: bool) -> tuple[int, int]:
    """Kill the last generation's first run at ``target``; repeat until done.

    Returns (external calls counted in the first invocation, invocations used)."""
    for generation in range(len(install.generations) - 1):
        install.deliver(generation)
        install.invoke()
    install.deliver(len(install.generations) - 1)
    killer = Killer(target, after)
    install.invoke(killer)
    invocations = 1
    while not install.done() and invocations < MAX_INVOCATIONS:
        install.invoke()
        invocations += 1
    return killer.calls, invocations
