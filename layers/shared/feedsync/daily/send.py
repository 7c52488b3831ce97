"""Sending one batch's files to one destination: every file reaches Adobe once.

The files are built once and stored in the state bucket with their visitor lists, and the plan
(files, jobs, and the file being sent right now) is saved before anything is sent. A later run
resumes the plan - the same bytes, never a rebuild. When the answer to an upload is lost, the
plan stays ``sending``: a later run looks the file up at Adobe (its name or key holds the
content generation and the batch) and sends it again only when Adobe does not have it and
``settle_seconds`` have passed since it was sent.

When Adobe takes a file: its visitors move planned -> sent in the ledger, the file record is
saved (and queued for reconciliation), then the plan notes the job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from feedsync.daily.destinations import Batch, BuiltFiles, Destination, UploadFile
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.errors import OutcomeUnknownError
from feedsync.parse.results import escape_id, unescape_id
from feedsync.state import tally
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import LedgerEntry
from feedsync.state.ports import Ledger, RunState, UploadLog
from feedsync.state.records import FileRecord, FileState, JobRef, Rejected
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)

SENDING, SENT = "sending", "sent"


@dataclass(frozen=True)
class PlannedFile:
    name: str
    part: int
    upload_key: str
    visitors: int

    @property
    def visitors_key(self) -> str:
        return StateLayout.upload_visitors(self.upload_key)


@dataclass
class Plan:
    """A batch's files for one destination (StateTable ``plan#<walk>#NNNNN#<destination>``).

    Bounded whatever the data: the files of one batch (a few parts), their jobs, and only the
    *number* of refused rows - the rows and reasons are in S3 (``refused_key``)."""

    state: str = SENDING
    files: list[PlannedFile] = field(default_factory=list)
    rejected: int = 0  # rows this destination did not get (mapping or its own rules)
    refused_key: str = ""  # those rows with their reasons, JSON lines in the state bucket
    jobs: list[JobRef] = field(default_factory=list)
    sending: dict[str, Any] | None = None  # {"file": name, "at": epoch} while a POST is out

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "files": [vars(f) for f in self.files],
            "rejected": self.rejected,
            "refused_key": self.refused_key,
            "jobs": [j.to_json() for j in self.jobs],
            "sending": self.sending,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            state=str(data.get("state", SENDING)),
            files=[PlannedFile(**f) for f in data.get("files", [])],
            rejected=int(data.get("rejected") or 0),
            refused_key=str(data.get("refused_key", "")),
            jobs=[JobRef.from_json(j) for j in data.get("jobs", [])],
            sending=data.get("sending"),
        )

    @property
    def visitors(self) -> int:
        return sum(f.visitors for f in self.files)


@dataclass(frozen=True)
class BatchScope:
    """Everything about one batch of one run that building and sending need."""

    state: ObjectStore
    runs: RunState
    uploads: UploadLog
    ledger: Ledger
    run: str  # run key: the delivery key, or the dry run's
    delivery_key: str
    delivery_id: str
    rsid: str
    day: dt.date
    generation: str
    walk: str  # the walk id (unique for ever)
    number: int
    mapping: Mapping
    dry: bool
    settle_seconds: float
    clock: Callable[[], float] = time.time
    # what another batch's claim stands for now (daily/claims.py): dead, accepted
    claims: Any = None
    seen: Any = None  # recently settled visitors in S3 (daily/seen.py)
    # destination -> visitor -> the entry this batch's claim wrote (saves a ledger read when
    # the files go out in the same invocation)
    claimed: dict[str, dict[str, LedgerEntry]] = field(default_factory=dict)

    @property
    def claim(self) -> str:
        """This batch's mark on the ledger entries it moves: unique for ever (the walk id)."""
        return claim_of(self.delivery_key, self.walk, self.number)

    def batch(self, rows: list[MappedRow]) -> Batch:
        return Batch(
            self.rsid,
            self.day,
            self.delivery_id,
            self.run,
            self.generation,
            self.number,
            rows,
            self.mapping,
            self.walk,
        )


def claim_of(delivery_key: str, walk: str, number: int) -> str:
    return f"{delivery_key}@{walk}#{number:05d}"


def batch_of(claim: str) -> tuple[str, str] | None:
    """(delivery key, in-flight id) of a claim, or None for a claim of another shape (the
    layout before walk ids: such a batch has no in-flight record)."""
    key, at, rest = claim.rpartition("@")
    if not at or "#" not in rest:
        return None
    return key, rest


def load_plan(scope: BatchScope, destination: str) -> Plan | None:
    data = scope.runs.plan(scope.run, scope.walk, scope.number, destination)
    return None if data is None else Plan.from_json(data)


def _save(scope: BatchScope, destination: str, plan: Plan) -> None:
    scope.runs.save_plan(scope.run, scope.walk, scope.number, destination, plan.to_json())


def plan_files(
    scope: BatchScope, destination: Destination, built: BuiltFiles, refused: list[Rejected]
) -> Plan:
    """Store the built files and their visitor lists once, save the plan. ``refused`` (the
    mapping's refusals) and the rows the destination's rules refused are written to S3 with
    their reasons - never to the ledger (a refusal is not claimed)."""
    own = [_tagged(r, destination.name) for r in built.rejected]
    plan = Plan(rejected=len(refused) + len(own))
    if plan.rejected:
        plan.refused_key = StateLayout.refused(scope.run, scope.walk, scope.number,
                                               destination.name)  # fmt: skip
        scope.state.put(plan.refused_key, refused_lines([*refused, *own]), "application/x-ndjson")
    for upload in built.files:
        key = StateLayout.upload(scope.run, destination.name, upload.name)
        scope.state.put(key, upload.data, "application/octet-stream")
        scope.state.put(StateLayout.upload_visitors(key), _lines(upload.visitors), "text/plain")
        plan.files.append(PlannedFile(upload.name, upload.part, key, len(upload.visitors)))
    _save(scope, destination.name, plan)
    return plan


def refused_lines(rows: list[Rejected]) -> bytes:
    return "".join(json.dumps(r.to_json()) + "\n" for r in rows).encode("utf-8")


def read_refused(state: ObjectStore, key: str) -> list[Rejected]:
    raw = state.get(key) or b""
    return [Rejected(**json.loads(line)) for line in raw.decode("utf-8").splitlines() if line]


def _tagged(rejected: Rejected, destination: str) -> Rejected:
    return Rejected(rejected.visitor, f"{destination}: {rejected.reason}")


def _lines(visitors: tuple[str, ...] | list[str]) -> bytes:
    return "".join(escape_id(v) + "\n" for v in visitors).encode("utf-8")


def read_visitors(state: ObjectStore, key: str) -> list[str]:
    raw = state.get(key) or b""
    return [unescape_id(line) for line in raw.decode("utf-8").splitlines()]


def send_plan(scope: BatchScope, destination: Destination, plan: Plan) -> bool:
    """Send the plan's files not yet sent; False when one must wait for a later run."""
    done = {job.file for job in plan.jobs}
    for planned in plan.files:
        if planned.name in done:
            continue
        job = _send_file(scope, destination, plan, planned)
        if job is None:
            return False
        _taken(scope, destination.name, planned, job)
        plan.jobs.append(job)
        plan.sending = None
        _save(scope, destination.name, plan)
    plan.state = SENT
    _save(scope, destination.name, plan)
    return True


def _send_file(
    scope: BatchScope, destination: Destination, plan: Plan, planned: PlannedFile
) -> JobRef | None:
    sender = destination.sender
    data = scope.state.get(planned.upload_key)
    if data is None:
        raise FileNotFoundError(scope.state.describe(planned.upload_key))
    upload = UploadFile(planned.name, data, (), planned.part)
    batch = scope.batch([])
    job = None
    if plan.sending and plan.sending.get("file") == planned.name and not sender.resend_is_harmless:
        job = sender.find(batch, upload)  # the earlier attempt may have reached Adobe
        age = scope.clock() - float(plan.sending.get("at", 0))
        if job is None and age < scope.settle_seconds:
            logger.info(
                "%s: %s not found at Adobe yet; looking again later", scope.run, upload.name
            )
            return None
    if job is None:
        plan.sending = {"file": planned.name, "at": scope.clock()}
        _save(scope, destination.name, plan)
        try:
            job = sender.send(batch, upload)
        except OutcomeUnknownError as exc:
            logger.warning("%s: %s - looking it up in a later run", scope.run, exc)
            return None
    return replace(job, upload_key=planned.upload_key)


def _taken(scope: BatchScope, destination: str, planned: PlannedFile, job: JobRef) -> None:
    """Adobe has the file (or, dry, it is built): the file record - which, not each visitor's
    ledger entry, says its visitors were sent (their entries name the batch that claimed them)
    - counted in the delivery's tally, and queued for reconciliation."""
    record = FileRecord(
        destination=destination,
        file=planned.name,
        delivery=scope.delivery_key,
        rsid=scope.rsid,
        generation=scope.generation,
        batch=scope.number,
        claim=scope.claim,
        upload_key=planned.upload_key,
        visitors_key=planned.visitors_key,
        visitors=planned.visitors,
        job=job,
        state=FileState.BUILT if scope.dry else FileState.SENT,
        sent_at=scope.clock(),
    )
    # created once: a batch resumed after a crash finds the record it wrote (and a verdict
    # reconciliation may have added since) and leaves it alone
    if scope.runs.save_file(scope.run, record, tally.sent(record)):
        if not scope.dry:
            scope.uploads.add(record)
        return
    existing = scope.runs.file(scope.run, record.id)
    if existing is not None and not existing.final and not scope.dry:
        scope.uploads.add(existing)  # the crash may have come before the queue got it


def finish(scope: BatchScope, destination: Destination, plan: Plan) -> bool:
    """Send what the plan has not sent yet; False while a file's outcome is unknown."""
    return plan.state == SENT or send_plan(scope, destination, plan)
