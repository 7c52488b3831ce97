"""In-memory fakes of the daily run's ports: the same rules as the DynamoDB adapters, in dicts.

Unit tests drive the run through these (no moto, no HTTP); the adapters are tested against
moto in tests/integration. A fake follows the port's documented contract, not the run's code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
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
from feedsync.state.records import JobRef, LedgerEntry, LedgerStatus, LockHolder, OpenUpload

DAY = 86_400


class MemoryLedger:
    def __init__(
        self, ttl_days: int = 90, miss_ttl_days: int = 7, clock: Callable[[], float] = time.time
    ) -> None:
        short = {LedgerStatus.NOT_FOUND, LedgerStatus.REJECTED}
        self.ttl = {s: (miss_ttl_days if s in short else ttl_days) * DAY for s in LedgerStatus}
        self.items: dict[tuple[str, str], tuple[LedgerEntry, float]] = {}
        self.clock = clock

    def entries(self, rsid: str, ids: Sequence[str]) -> dict[str, LedgerEntry]:
        now = self.clock()
        out = {}
        for visitor in ids:
            found = self.items.get((rsid, visitor))
            if found is not None and found[1] > now:
                out[visitor] = found[0]
        return out

    def record(self, rsid: str, entries: Iterable[tuple[str, LedgerEntry]]) -> int:
        now = self.clock()
        count = 0
        for visitor, entry in entries:
            self.items[(rsid, visitor)] = (entry, now + self.ttl[entry.status])
            count += 1
        return count


class MemoryRunState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.locks: dict[str, LockHolder] = {}
        self.clock = clock

    def _all(self, run: str, prefix: str) -> dict[str, Any]:
        return {
            sk: json.loads(v)
            for (r, sk), v in self.items.items()
            if r == run and sk.startswith(prefix)
        }

    def batches(self, run: str) -> dict[int, dict[str, Any]]:
        return {int(sk.split("#")[1]): v for sk, v in self._all(run, "batch#").items()}

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None:
        self.items[(run, f"batch#{index:05d}")] = json.dumps(record)

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None:
        value = self.items.get((run, f"upload#{index:05d}#{destination}"))
        return None if value is None else dict(json.loads(value))

    def save_upload(self, run: str, index: int, destination: str, record: dict[str, Any]) -> None:
        self.items[(run, f"upload#{index:05d}#{destination}")] = json.dumps(record)

    def verdicts(self, run: str) -> list[dict[str, Any]]:
        return list(self._all(run, "verdict#").values())

    def save_verdict(self, run: str, name: str, record: dict[str, Any]) -> None:
        self.items[(run, f"verdict#{name}")] = json.dumps(record)

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
        self.open: dict[str, OpenUpload] = {}

    def add(self, upload: OpenUpload) -> None:
        self.open[upload.id] = upload

    def open_uploads(self) -> list[OpenUpload]:
        return sorted(self.open.values(), key=lambda u: (u.sent_at, u.id))

    def close(self, upload: OpenUpload) -> None:
        self.open.pop(upload.id, None)


@dataclass
class FakeCrm:
    """The CRM as a dict: visitor id -> record; counts calls like Marketo (300 ids a call)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "fake"
    calls: int = 0

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.calls += -(-len(ids) // 300)
        return {v: self.records[v] for v in ids if v in self.records}

    def prepare(self, deadline: Any) -> dict[str, Any] | None:
        return None


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
    )
    put_json(state, StateLayout.record(key), record.to_json())
    return record
