"""In-memory fakes of the daily run's ports: the same rules as the DynamoDB adapters, in dicts.

Unit tests drive the run through these (no moto, no HTTP); the adapters are tested against
moto in tests/integration. A fake follows the port's documented contract, not the run's code.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedsync.daily.destinations.base import (
    ACCEPTED,
    FAILED,
    PENDING,
    AdobeVerdict,
    Batch,
    UploadFile,
)
from feedsync.state.ledger import SHORT_LIVED, LedgerEntry, Move
from feedsync.state.records import FileRecord, JobRef, LockHolder

DAY = 86_400


class MemoryLedger:
    """The ledger's contract (state/ledger.py): per (rsid, destination, visitor), moves applied
    only when their condition holds, expired entries count as absent."""

    def __init__(
        self, ttl_days: int = 90, miss_ttl_days: int = 7, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_long, self.ttl_short = ttl_days * DAY, miss_ttl_days * DAY
        self.items: dict[tuple[str, str, str], tuple[LedgerEntry, float]] = {}
        self.clock = clock

    def entries(
        self, rsid: str, destination: str, ids: Sequence[str], consistent: bool = True
    ) -> dict[str, LedgerEntry]:
        now = self.clock()
        out = {}
        for visitor in ids:
            found = self.items.get((rsid, destination, visitor))
            if found is not None and found[1] > now:
                out[visitor] = found[0]
        return out

    def move(self, rsid: str, destination: str, moves: Sequence[Move]) -> set[str]:
        current = self.entries(rsid, destination, [m.visitor for m in moves])
        now = self.clock()
        done = set()
        for move in moves:
            if move.allows(current.get(move.visitor)):
                ttl = self.ttl_short if move.entry.state in SHORT_LIVED else self.ttl_long
                self.items[(rsid, destination, move.visitor)] = (move.entry, now + ttl)
                current[move.visitor] = move.entry
                done.add(move.visitor)
        return done

    def states(self, rsid: str = "acmeprod", destination: str = "datasources") -> Counter[str]:
        now = self.clock()
        return Counter(
            str(e.state)
            for (r, d, _), (e, until) in self.items.items()
            if r == rsid and d == destination and until > now
        )


class MemoryRunState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.locks: dict[str, LockHolder] = {}
        self.clock = clock

    def walk(self, run: str, generation: str) -> dict[str, Any] | None:
        value = self.items.get((run, f"walk#{generation}"))
        return None if value is None else dict(json.loads(value))

    def save_walk(self, run: str, generation: str, record: dict[str, Any]) -> bool:
        before = self.walk(run, generation)
        expected = 0 if before is None else int(before["version"])
        if int(record["version"]) != expected + 1:
            return False
        self.items[(run, f"walk#{generation}")] = json.dumps(record)
        return True

    def in_flight(self, run: str) -> list[dict[str, Any]]:
        return [
            dict(json.loads(v))
            for (r, sk), v in sorted(self.items.items())
            if r == run and sk.startswith("inflight#")
        ]

    def in_flight_one(self, run: str, batch_id: str) -> dict[str, Any] | None:
        value = self.items.get((run, f"inflight#{batch_id}"))
        return None if value is None else dict(json.loads(value))

    def save_in_flight(self, run: str, batch_id: str, record: dict[str, Any]) -> None:
        self.items[(run, f"inflight#{batch_id}")] = json.dumps(record)

    def drop_in_flight(self, run: str, batch_id: str) -> None:
        self.items.pop((run, f"inflight#{batch_id}"), None)

    def plan(self, run: str, walk: str, batch: int, destination: str) -> dict[str, Any] | None:
        value = self.items.get((run, f"plan#{walk}#{batch:05d}#{destination}"))
        return None if value is None else dict(json.loads(value))

    def save_plan(
        self, run: str, walk: str, batch: int, destination: str, record: dict[str, Any]
    ) -> None:
        self.items[(run, f"plan#{walk}#{batch:05d}#{destination}")] = json.dumps(record)

    def files(self, run: str, limit: int | None = None) -> list[FileRecord]:
        return [
            FileRecord.from_json(json.loads(v))
            for (r, sk), v in sorted(self.items.items())
            if r == run and sk.startswith("file#")
        ][:limit]

    def file(self, run: str, file_id: str) -> FileRecord | None:
        value = self.items.get((run, f"file#{file_id}"))
        return None if value is None else FileRecord.from_json(json.loads(value))

    def save_file(self, run: str, record: FileRecord, counters: Any = ()) -> bool:
        before = self.file(run, record.id)
        if record.version != (0 if before is None else before.version) + 1:
            return False
        self.items[(run, f"file#{record.id}")] = json.dumps(record.to_json())
        self.add_counters(run, counters)
        return True

    def counters(self, run: str, prefix: str) -> dict[str, dict[str, int]]:
        return {
            sk[len("count#") :]: dict(json.loads(v))
            for (r, sk), v in sorted(self.items.items())
            if r == run and sk.startswith(f"count#{prefix}")
        }

    def counter(self, run: str, name: str) -> dict[str, int]:
        return dict(json.loads(self.items.get((run, f"count#{name}"), "{}")))

    def add_counters(self, run: str, counters: Any) -> None:
        for name, amounts in counters:
            current = Counter(self.counter(run, name))
            current.update(amounts)
            self.items[(run, f"count#{name}")] = json.dumps(dict(current))

    def set_counter(self, run: str, name: str, values: dict[str, int]) -> None:
        self.items[(run, f"count#{name}")] = json.dumps(dict(values))

    def forget(self, run: str, keep: Sequence[str] = ()) -> int:
        mine = [k for k in self.items if k[0] == run and not k[1].startswith(tuple(keep))]
        for k in mine:
            del self.items[k]
        return len(mine)

    def acquire(self, run: str, owner: str, seconds: float, force: bool = False) -> bool:
        now = self.clock()
        held = self.locks.get(run)
        if held and held.owner != owner and held.until > now and not force:
            return False
        self.locks[run] = LockHolder(owner, now + seconds, now)
        return True

    def renew(self, run: str, owner: str, seconds: float) -> bool:
        held = self.locks.get(run)
        if held is None or held.owner != owner:
            return False
        now = self.clock()
        self.locks[run] = LockHolder(owner, now + seconds, now)
        return True

    def holder(self, run: str) -> LockHolder | None:
        return self.locks.get(run)

    def release(self, run: str, owner: str) -> None:
        held = self.locks.get(run)
        if held and held.owner == owner:
            del self.locks[run]


class MemoryUploadLog:
    def __init__(self) -> None:
        self.open: dict[str, FileRecord] = {}

    def add(self, upload: FileRecord) -> None:
        self.open[f"{upload.delivery}#{upload.id}"] = upload

    def open_uploads(self) -> list[FileRecord]:
        return sorted(self.open.values(), key=lambda u: (u.sent_at, u.id))

    def close(self, upload: FileRecord) -> None:
        self.open.pop(f"{upload.delivery}#{upload.id}", None)


@dataclass
class FakeCrm:
    """The CRM as a dict: visitor id -> record; counts calls like Marketo (300 ids a call)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "fake"
    calls: int = 0
    lookups_cost_calls: bool = True  # as Marketo: misses are remembered in the ledger
    copy_as_of: Any = None  # a datetime: the CRM copy's age (a mirror, an export); None: live

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.calls += -(-len(ids) // 300)
        return {v: self.records[v] for v in ids if v in self.records}

    def prepare(self, deadline: Any, needed: Any = None) -> dict[str, Any] | None:
        return None

    def staleness(self, as_of: Any) -> str | None:
        if self.copy_as_of is None or self.copy_as_of >= as_of:
            return None
        return f"the CRM copy is from {self.copy_as_of.isoformat()}"


@dataclass
class AdobeFake:
    """One Adobe destination's side: what it received, and the verdicts it will give."""

    received: dict[str, bytes] = field(default_factory=dict)  # identity -> file
    sends: int = 0
    verdicts: dict[str, str] = field(default_factory=dict)  # identity -> accepted/failed/pending
    lose_next: int = 0  # answers to lose (the file arrives, the answer does not)
    refuse_next: int = 0  # calls Adobe does not take (a 500 before handling)
    lists_after: float = 0.0  # seconds before a received file shows in Adobe's job list
    clock: Callable[[], float] = time.time
    received_at: dict[str, float] = field(default_factory=dict)


class FakeSender:
    """A sender with Data Sources' behaviour: identity is the file name, a lookup finds it."""

    def __init__(self, name: str, adobe: AdobeFake, resend_is_harmless: bool = False) -> None:
        self.name = name
        self.adobe = adobe
        self.resend_is_harmless = resend_is_harmless

    def send(self, batch: Batch, upload: UploadFile) -> JobRef:
        from feedsync.errors import OutcomeUnknownError

        self.adobe.sends += 1
        if self.adobe.refuse_next:
            self.adobe.refuse_next -= 1
            raise OutcomeUnknownError("fake", "HTTP 500 before the file was taken", status=500)
        self.adobe.received.setdefault(upload.name, upload.data)
        self.adobe.received_at.setdefault(upload.name, self.adobe.clock())
        if self.adobe.lose_next:
            self.adobe.lose_next -= 1
            raise OutcomeUnknownError("fake", "answer lost")
        return JobRef(file=upload.name, destination=self.name, job_id=upload.name)

    def find(self, batch: Batch, upload: UploadFile) -> JobRef | None:
        listed_at = self.adobe.received_at.get(upload.name, float("inf")) + self.adobe.lists_after
        if self.adobe.clock() >= listed_at:
            return JobRef(file=upload.name, destination=self.name, job_id=upload.name)
        return None

    def verdict(self, rsid: str, job: JobRef) -> AdobeVerdict:
        outcome = self.adobe.verdicts.get(job.file, ACCEPTED)
        status = {ACCEPTED: "success", FAILED: "failure", PENDING: "processing"}[outcome]
        return AdobeVerdict(outcome, status)


def memory_delivery(
    state: Any,
    pending: Sequence[str],
    *,
    key_folder: str = "adobe/acmeprod/",
    rsid: str = "acmeprod",
    day: str = "2026-11-20",
    content: str = "g1",
) -> Any:
    """A complete delivery in a store, as the parse step leaves it (one data file whose
    stream holds ``pending``); ``content`` stands for the data file's digest (a re-delivery
    with other content gets another generation)."""
    from feedsync.parse.results import write_visitors
    from feedsync.state import todo
    from feedsync.state.layout import StateLayout
    from feedsync.state.records import DeliveryRecord, FileCheck, HitCounts, Status
    from feedsync.storage import put_json

    delivery = f"{rsid}_{day}"
    key = f"{key_folder}{delivery}"
    name = f"01-{delivery}.tsv.gz"
    visitors_key = StateLayout.visitors(key, name, content.ljust(32, "0"))
    write_visitors(state, visitors_key, sorted(set(pending)), [])
    record = DeliveryRecord(
        delivery=delivery,
        rsid=rsid,
        day=day,
        hour=None,
        folder=key_folder,
        manifest=f"{delivery}.txt",
        visitor_columns=("mcvisid",),
        crm_id_column="post_evar22",
        files=[
            FileCheck(
                name,
                "data",
                True,
                True,
                len(pending),
                True,
                visitors_key=visitors_key,
                counts=HitCounts(len(pending), len(pending)),
            )
        ],
        status=Status.COMPLETE,
        visitors_pending=len(set(pending)),
        visitors_known=0,
        closed_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
    )
    put_json(state, StateLayout.record(key), record.to_json())
    todo.mark(state, key, record.closed_at, "delivered")  # as the parse step indexes it
    return record
