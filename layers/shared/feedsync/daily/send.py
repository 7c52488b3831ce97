"""Sending one batch's files to one destination: every file reaches Adobe once per attempt.

The files are built once and stored in the state bucket with their visitor lists, and the plan
(attempt, files, jobs, and the file being sent right now) is saved before anything is sent. A
later run resumes the plan - the same bytes, never a rebuild. When the answer to an upload is
lost, the plan stays ``sending``: a later run looks the file up at Adobe (its name or key holds
the content generation and the attempt) and sends it again only when Adobe does not have it
and ``settle_seconds`` have passed since it was sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from feedsync.daily.destinations import Batch, Destination, UploadFile
from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.errors import OutcomeUnknownError
from feedsync.state.layout import StateLayout
from feedsync.state.ports import RunState, UploadLog
from feedsync.state.records import JobRef, OpenUpload, Rejected
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)

SENDING, SENT, FAILED = "sending", "sent", "failed"


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
    """A batch's files for one destination (the upload record in StateTable)."""

    attempt: int
    state: str = SENDING
    files: list[PlannedFile] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    jobs: list[JobRef] = field(default_factory=list)
    sending: dict[str, Any] | None = None  # {"file": name, "at": epoch} while a POST is out

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "state": self.state,
            "files": [vars(f) for f in self.files],
            "rejected": [r.to_json() for r in self.rejected],
            "jobs": [j.to_json() for j in self.jobs],
            "sending": self.sending,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            attempt=int(data.get("attempt", 1)),
            state=str(data.get("state", SENDING)),
            files=[PlannedFile(**f) for f in data.get("files", [])],
            rejected=[Rejected(**r) for r in data.get("rejected", [])],
            jobs=[JobRef.from_json(j) for j in data.get("jobs", [])],
            sending=data.get("sending"),
        )


@dataclass(frozen=True)
class BatchScope:
    """Everything about one batch of one run that sending needs."""

    state: ObjectStore
    runs: RunState
    uploads: UploadLog
    run: str  # run name: delivery key, or the dry-run prefixed key
    state_key: str  # checkpoint key: run @ generation
    delivery_key: str
    delivery_id: str
    rsid: str
    day: dt.date
    generation: str
    index: int
    mapping: Mapping
    dry: bool
    settle_seconds: float
    clock: Callable[[], float] = time.time

    def batch(self, rows: list[MappedRow], attempt: int) -> Batch:
        return Batch(
            self.rsid,
            self.day,
            self.delivery_id,
            self.state_key,
            self.generation,
            self.index,
            rows,
            self.mapping,
            attempt,
        )


@dataclass
class Delivered:
    jobs: list[JobRef]
    rejected: list[Rejected]
    visitors: list[str]  # whose rows are in the files (sent, or waiting to be)
    waiting: bool = False  # a file's outcome is unknown: a later run finishes it


def _save(scope: BatchScope, destination: str, plan: Plan) -> None:
    scope.runs.save_upload(scope.state_key, scope.index, destination, plan.to_json())


def load_plan(scope: BatchScope, destination: str) -> Plan | None:
    data = scope.runs.upload(scope.state_key, scope.index, destination)
    return None if data is None else Plan.from_json(data)


def plan_files(
    scope: BatchScope, destination: Destination, rows: list[MappedRow], attempt: int
) -> tuple[Plan, list[str]]:
    """Build the files once, store them and their visitor lists, save the plan."""
    built = destination.builder.build(scope.batch(rows, attempt))
    plan = Plan(attempt, rejected=[_tagged(r, destination.name) for r in built.rejected])
    visitors: list[str] = []
    for upload in built.files:
        key = StateLayout.upload(scope.run, destination.name, upload.name)
        scope.state.put(key, upload.data, "application/octet-stream")
        scope.state.put(StateLayout.upload_visitors(key), _lines(upload.visitors), "text/plain")
        plan.files.append(PlannedFile(upload.name, upload.part, key, len(upload.visitors)))
        visitors.extend(upload.visitors)
    _save(scope, destination.name, plan)
    return plan, visitors


def _tagged(rejected: Rejected, destination: str) -> Rejected:
    return Rejected(rejected.visitor, f"{destination}: {rejected.reason}")


def _lines(visitors: tuple[str, ...]) -> bytes:
    from feedsync.parse.results import escape_id

    return "".join(escape_id(v) + "\n" for v in visitors).encode("utf-8")


def planned_visitors(state: ObjectStore, plan: Plan) -> list[str]:
    from feedsync.parse.results import unescape_id

    out: list[str] = []
    for planned in plan.files:
        raw = state.get(planned.visitors_key) or b""
        out.extend(unescape_id(line) for line in raw.decode("utf-8").splitlines())
    return out


def send_plan(scope: BatchScope, destination: Destination, plan: Plan) -> bool:
    """Send the plan's files not yet sent; False when one must wait for a later run."""
    done = {job.file for job in plan.jobs}
    for planned in plan.files:
        if planned.name in done:
            continue
        job = _send_file(scope, destination, plan, planned)
        if job is None:
            return False
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
    batch = scope.batch([], plan.attempt)
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
    job = replace(job, upload_key=planned.upload_key, attempt=plan.attempt)
    if not scope.dry:
        scope.uploads.add(_open_upload(scope, destination.name, plan, planned, job))
    return job


def _open_upload(
    scope: BatchScope, destination: str, plan: Plan, planned: PlannedFile, job: JobRef
) -> OpenUpload:
    return OpenUpload(
        destination=destination,
        rsid=scope.rsid,
        delivery=scope.delivery_key,
        run=scope.state_key,
        batch=scope.index,
        attempt=plan.attempt,
        job=job,
        visitors_key=planned.visitors_key,
        visitors=planned.visitors,
        sent_at=scope.clock(),
    )


def deliver(
    scope: BatchScope, destination: Destination, rows: list[MappedRow], attempt: int = 1
) -> Delivered:
    """Plan (or resume) and send one destination's files of this batch."""
    plan = load_plan(scope, destination.name)
    if plan is not None and plan.state == FAILED:
        # Adobe failed an earlier attempt: the re-send is a new attempt with new identities
        attempt, plan = plan.attempt + 1, None
    if plan is None:
        plan, visitors = plan_files(scope, destination, rows, attempt)
    else:
        visitors = planned_visitors(scope.state, plan)
    complete = plan.state == SENT or send_plan(scope, destination, plan)
    return Delivered(list(plan.jobs), list(plan.rejected), visitors, waiting=not complete)
