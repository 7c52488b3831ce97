"""Typed records of both pipeline steps, and the one ``Status`` vocabulary they share.

Each record serialises to the JSON stored in the state bucket (``to_json``) and reads it back
(``from_json``); that JSON is an interface - operators, the CLI and dashboards read it - so field
names never change, new fields are only added.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

Json = dict[str, Any]


class Status(StrEnum):
    # parse step: a data file, a delivery
    PARSED = "parsed"
    DEFERRED = "deferred"
    IGNORED = "ignored"
    COMPLETE = "complete"
    FAILED = "failed"
    # daily run: one delivery's run
    SKIPPED = "skipped"
    BUSY = "busy"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # uploads whose outcome is unknown are looked up again by a later run
    AWAITING_RESEND = "awaiting_resend"  # Adobe failed files: the next run sends them again
    QUOTA_EXHAUSTED = "quota_exhausted"
    NOT_CONFIGURED = "not_configured"
    WAITING_FOR_CRM = "waiting_for_crm"  # the CRM copy (mirror, export) is older than the day
    SHARDED = "sharded"  # cut into key ranges, each walked by a shard of its own (daily/shards.py)
    GIVEN_UP = "given_up"  # done, but visitors Adobe failed every time wait for an operator
    INTERRUPTED = "interrupted"  # stopped by the operator (Ctrl-C); the next run resumes


@dataclass(frozen=True)
class HitCounts:
    rows: int = 0
    counted_rows: int = 0
    excluded_rows: int = 0
    rows_without_visitor: int = 0

    NAMES = ("rows", "counted_rows", "excluded_rows", "rows_without_visitor")

    def to_json(self) -> Json:
        return {name: getattr(self, name) for name in self.NAMES}

    @classmethod
    def from_json(cls, data: Json) -> HitCounts:
        return cls(**{name: int(data.get(name) or 0) for name in cls.NAMES})

    def __add__(self, other: HitCounts) -> HitCounts:
        return HitCounts(*(getattr(self, n) + getattr(other, n) for n in self.NAMES))


# --- parse step ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """One data file's parse result (``results/<folder>/<delivery>/<file>.json``)."""

    file: str
    status: Status  # PARSED or FAILED
    parsed_at: str
    error: str | None = None
    md5: str = ""
    size: int = 0
    counts: HitCounts = HitCounts()
    visitors_pending: int = 0
    visitors_known: int = 0
    visitors_key: str = ""
    visitor_columns: tuple[str, ...] = ()
    crm_id_column: str = ""
    filters: tuple[str, ...] = ()
    header_md5: str = ""  # digest of the column_headers.tsv the file was read with
    # the stream's gzip members: (first id, byte offset) - a run resumes from its member
    visitors_index: tuple[tuple[str, int], ...] = ()

    @property
    def parsed(self) -> bool:
        return self.status is Status.PARSED

    def to_json(self) -> Json:
        if not self.parsed:
            return {"file": self.file, "status": str(self.status), "error": self.error,
                    "parsed_at": self.parsed_at}  # fmt: skip
        return {
            "file": self.file,
            "status": str(self.status),
            "md5": self.md5,
            "size": self.size,
            "records": self.counts.rows,
            **self.counts.to_json(),
            "visitors_pending": self.visitors_pending,
            "visitors_known": self.visitors_known,
            "visitors_key": self.visitors_key,
            "visitor_columns": list(self.visitor_columns),
            "crm_id_column": self.crm_id_column,
            "filters": list(self.filters),
            "header_md5": self.header_md5,
            "visitors_index": [list(entry) for entry in self.visitors_index],
            "parsed_at": self.parsed_at,
        }

    @classmethod
    def from_json(cls, data: Json) -> FileResult:
        return cls(
            file=str(data["file"]),
            status=Status(data["status"]),
            parsed_at=str(data.get("parsed_at", "")),
            error=data.get("error"),
            md5=str(data.get("md5", "")),
            size=int(data.get("size") or 0),
            counts=HitCounts.from_json(data),
            visitors_pending=int(data.get("visitors_pending") or 0),
            visitors_known=int(data.get("visitors_known") or 0),
            visitors_key=str(data.get("visitors_key", "")),
            visitor_columns=tuple(data.get("visitor_columns", ())),
            crm_id_column=str(data.get("crm_id_column", "")),
            filters=tuple(data.get("filters", ())),
            header_md5=str(data.get("header_md5", "")),
            visitors_index=_index(data.get("visitors_index")),
        )


def _index(data: Any) -> tuple[tuple[str, int], ...]:
    return tuple((str(first), int(offset)) for first, offset in data or ())


@dataclass(frozen=True)
class ObjectOutcome:
    """A feed object the parse step did not turn into a result (ignored, deferred)."""

    status: Status
    reason: str
    key: str = ""
    file: str = ""

    def to_json(self) -> Json:
        out: Json = {"status": str(self.status), "reason": self.reason}
        if self.key:
            out["key"] = self.key
        if self.file:
            out["file"] = self.file
        return out


@dataclass(frozen=True)
class FileCheck:
    """One file of a delivery record: the manifest checks and, for data files, its figures."""

    name: str
    kind: str  # "data" | "lookup"
    md5_ok: bool | None = None
    size_ok: bool | None = None
    records: int | None = None
    records_ok: bool | None = None
    error: str | None = None
    parsed_now: bool = False
    filters: tuple[str, ...] = ()
    counts: HitCounts = HitCounts()
    visitors_key: str = ""
    visitors_index: tuple[tuple[str, int], ...] = ()  # the stream's members (FileResult's)

    @property
    def usable(self) -> bool:
        return self.kind == "data" and self.error is None

    def to_json(self) -> Json:
        if self.error is not None:
            return {"name": self.name, "kind": self.kind, "error": self.error}
        out: Json = {"name": self.name, "kind": self.kind, "md5_ok": self.md5_ok,
                     "size_ok": self.size_ok, "records": self.records,
                     "records_ok": self.records_ok}  # fmt: skip
        if self.kind == "data":
            out.update(parsed_now=self.parsed_now, filters=list(self.filters),
                       visitors_key=self.visitors_key, **self.counts.to_json(),
                       visitors_index=[list(entry) for entry in self.visitors_index])  # fmt: skip
        return out

    @classmethod
    def from_json(cls, data: Json) -> FileCheck:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            md5_ok=data.get("md5_ok"),
            size_ok=data.get("size_ok"),
            records=data.get("records"),
            records_ok=data.get("records_ok"),
            error=data.get("error"),
            parsed_now=bool(data.get("parsed_now", False)),
            filters=tuple(data.get("filters", ())),
            counts=HitCounts.from_json(data),
            visitors_key=str(data.get("visitors_key", "")),
            visitors_index=_index(data.get("visitors_index")),
        )


@dataclass
class DeliveryRecord:
    """A delivery, verified against its manifest (``deliveries/<folder><delivery>.json``)."""

    delivery: str
    rsid: str
    day: str
    hour: str | None
    folder: str
    manifest: str
    visitor_columns: tuple[str, ...]
    crm_id_column: str
    files: list[FileCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    total_records: int | None = None
    counts: HitCounts = HitCounts()
    status: Status = Status.FAILED
    visitors_pending: int | None = None
    visitors_known: int | None = None
    closed_at: str = ""

    @property
    def complete(self) -> bool:
        return self.status is Status.COMPLETE

    @property
    def key(self) -> str:
        """The delivery's key in the state bucket: feed folder + delivery id."""
        return f"{self.folder}{self.delivery}"

    @property
    def empty(self) -> bool:
        """A day without traffic: the manifest lists no data file."""
        return not any(f.kind == "data" for f in self.files) and not self.reasons

    @property
    def data_files(self) -> list[FileCheck]:
        return [f for f in self.files if f.usable]

    def to_json(self) -> Json:
        out: Json = {
            "delivery": self.delivery,
            "rsid": self.rsid,
            "day": self.day,
            "hour": self.hour,
            "folder": self.folder,
            "manifest": self.manifest,
            "visitor_columns": list(self.visitor_columns),
            "crm_id_column": self.crm_id_column,
            "files": [f.to_json() for f in self.files],
            "reasons": list(self.reasons),
            **self.counts.to_json(),
            "status": str(self.status),
            "complete": self.complete,
            "empty": self.empty,
            "visitors_pending": self.visitors_pending,
            "visitors_known": self.visitors_known,
            "closed_at": self.closed_at,
        }
        if self.total_records is not None:
            out["total_records"] = self.total_records
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(cls, data: Json) -> DeliveryRecord:
        status = data.get("status") or ("complete" if data.get("complete") else "failed")
        return cls(
            delivery=str(data["delivery"]),
            rsid=str(data["rsid"]),
            day=str(data["day"]),
            hour=data.get("hour"),
            folder=str(data.get("folder", "")),
            manifest=str(data.get("manifest", "")),
            visitor_columns=tuple(data.get("visitor_columns", ())),
            crm_id_column=str(data.get("crm_id_column", "")),
            files=[FileCheck.from_json(f) for f in data.get("files", [])],
            reasons=list(data.get("reasons", [])),
            warnings=list(data.get("warnings", [])),
            total_records=data.get("total_records"),
            counts=HitCounts.from_json(data),
            status=Status(status),
            visitors_pending=data.get("visitors_pending"),
            visitors_known=data.get("visitors_known"),
            closed_at=str(data.get("closed_at", "")),
        )


# --- daily run ----------------------------------------------------------------------------

MAX_REJECT_SAMPLES = 50
# Every text kept in a StateTable item is clipped, and the distinct reasons counted are
# capped: no item grows with the data (DynamoDB's limit is 400 KB; tests/unit/test_bounds.py
# builds the largest walk, plan and file record the code can write).
MAX_TEXT = 300
MAX_REASONS = 40
OTHER_REASONS = "(other reasons)"
# what the ledger already said of a batch's visitors with nothing left to do (the report's
# "already enriched", told apart)
EARLIER = ("accepted", "in_flight", "given_up", "not_found", "rejected")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def count_reasons(into: dict[str, int], reasons: Counter[str]) -> dict[str, int]:
    """``into`` plus ``reasons``, at most MAX_REASONS distinct (the rest under one line)."""
    out = Counter(into)
    for reason, n in reasons.items():
        reason = clip(reason)
        if reason in out or len(out) < MAX_REASONS - 1:
            out[reason] += n
        else:
            out[OTHER_REASONS] += n
    return dict(out)


FIGURES = (
    "pending",
    "already_enriched",
    "looked_up",
    "matched",
    "uploaded_rows",
    "rejected",
    "not_found",
)


@dataclass(frozen=True)
class Rejected:
    visitor: str
    reason: str

    def to_json(self) -> Json:
        return {"visitor": self.visitor, "reason": self.reason}


@dataclass(frozen=True)
class JobRef:
    """One file a destination sent (or, in a dry run, only wrote): how to find it at Adobe."""

    file: str
    destination: str = ""
    job_id: str | int | None = None  # Data Sources job
    status: str | None = None  # Adobe's status when last seen
    rows: int | None = None
    idempotency_key: str | None = None  # BDIA
    batch_status: str | None = None  # Target batchStatus URL
    dry_run: bool | None = None
    upload_key: str = ""  # the file's copy in the state bucket
    attempt: int = 1

    def to_json(self) -> Json:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v not in (None, "") or k == "rows"}

    @classmethod
    def from_json(cls, data: Json) -> JobRef:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class BatchFigures:
    """What one batch did (its checkpoint in StateTable and a part of the report)."""

    pending: int = 0
    already_enriched: int = 0
    looked_up: int = 0
    matched: int = 0
    uploaded_rows: int = 0
    rejected: int = 0
    not_found: int = 0
    crm_calls: int = 0
    rejected_samples: list[Rejected] = field(default_factory=list)
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    # already_enriched told apart: what the ledger said of them (EARLIER)
    earlier: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {
            **{name: getattr(self, name) for name in (*FIGURES, "crm_calls")},
            "rejected_samples": [r.to_json() for r in self.rejected_samples],
            "rejected_reasons": dict(self.rejected_reasons),
            "earlier": dict(self.earlier),
        }

    @classmethod
    def from_json(cls, data: Json) -> BatchFigures:
        return cls(
            **{name: int(data.get(name) or 0) for name in (*FIGURES, "crm_calls")},
            rejected_samples=[Rejected(**s) for s in data.get("rejected_samples", [])],
            rejected_reasons=dict(data.get("rejected_reasons", {})),
            earlier={k: int(v) for k, v in (data.get("earlier") or {}).items()},
        )

    def add_rejected(self, rejected: list[Rejected]) -> None:
        self.rejected += len(rejected)
        room = MAX_REJECT_SAMPLES - len(self.rejected_samples)
        self.rejected_samples.extend(
            Rejected(clip(r.visitor), clip(r.reason)) for r in rejected[: max(0, room)]
        )
        self.rejected_reasons = count_reasons(
            self.rejected_reasons, Counter(r.reason for r in rejected)
        )


def total(batches: list[BatchFigures]) -> BatchFigures:
    """The sum of several batches' figures (samples capped, jobs concatenated)."""
    out = BatchFigures()
    earlier: Counter[str] = Counter()
    for batch in batches:
        for name in (*FIGURES, "crm_calls"):
            setattr(out, name, getattr(out, name) + getattr(batch, name))
        out.rejected_samples.extend(batch.rejected_samples)
        out.rejected_reasons = count_reasons(out.rejected_reasons, Counter(batch.rejected_reasons))
        earlier.update(batch.earlier)
    out.rejected_samples = out.rejected_samples[:MAX_REJECT_SAMPLES]
    out.earlier = dict(earlier)
    return out


class FileState(StrEnum):
    """One file's life at Adobe (the file record; its visitors' states are in the ledger)."""

    BUILT = "built"  # a dry run's file: written, never sent
    SENT = "sent"  # Adobe took it; no verdict yet
    ACCEPTED = "accepted"
    FAILED = "failed"  # its visitors were released (retry) or given up
    STUCK = "stuck"  # no verdict after AdobeStuckHours: still asked each run, alarmed


@dataclass
class FileRecord:
    """A file Adobe took (or, dry, that was only built): one item per file in StateTable; the
    upload log's open queue holds the ones awaiting a verdict."""

    destination: str
    file: str
    delivery: str  # delivery key
    rsid: str
    generation: str
    batch: int
    claim: str  # the batch's claim on its visitors' ledger entries
    upload_key: str  # the file's copy in the state bucket
    visitors_key: str  # the visitors whose rows it holds, one per line
    visitors: int
    job: JobRef
    state: FileState = FileState.SENT
    sent_at: float = 0.0  # epoch seconds
    adobe_status: str = ""  # Adobe's own word when last asked
    detail: str = ""
    verdict_at: str = ""
    skipped_rows: int = 0  # rows Adobe took the file with but did not ingest (partial)
    not_ingested: int = 0  # of them, visitors Adobe named (now rejected, with its reason)
    requeued: int = 0  # of those, sent again since by ``feedsync retry --rejected``
    # a failed file's visitors the verdict released for a re-send / gave up (counted once, when
    # the verdict moved them in the ledger; a later writer changes them only with the version)
    released: int = 0
    given_up: int = 0
    # a failed file none of whose visitors is left in ``retry`` (all re-planned, or given up);
    # ``feedsync retry`` opens it again. What became of its visitors is the ledger's to say.
    resolved: bool = False
    version: int = 1  # every save names the version it replaces (two writers never both win)

    @property
    def id(self) -> str:
        return f"{self.destination}#{self.file}"

    @property
    def final(self) -> bool:
        return self.state in (FileState.ACCEPTED, FileState.FAILED, FileState.BUILT)

    def to_json(self) -> Json:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["job"] = self.job.to_json()
        out["state"] = str(self.state)
        out["detail"] = clip(self.detail)
        return out

    @classmethod
    def from_json(cls, data: Json) -> FileRecord:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["job"] = JobRef.from_json(data["job"])
        values["state"] = FileState(data.get("state", "sent"))
        return cls(**values)


class BatchKind(StrEnum):
    WALK = "walk"  # the next ids of the current generation's pending stream
    RETRY = "retry"  # visitors Adobe failed (or an operator's ``feedsync retry``)
    CATCHUP = "catchup"  # ids behind the cursor, for a destination added in the middle of a walk


@dataclass(frozen=True)
class InFlight:
    """A batch a run started and has not finished (StateTable ``inflight#<walk>#NNNNN``), of
    any generation and any invocation: the next run of the delivery finishes it before
    anything else, so nothing a batch claimed is ever stranded. Its ids are stored before the
    record, so a resumed batch repeats exactly these visitors whatever BATCH_SIZE is now. The
    record is removed once every destination's plan is sent (the files are then followed by
    reconciliation)."""

    walk: str  # the walk id (unique for ever: a forget or a re-parse starts a new one)
    generation: str
    number: int
    kind: BatchKind
    ids_key: str  # the state-bucket object listing the batch's visitor ids
    destinations: tuple[str, ...]  # the destinations this batch serves
    last: str = ""  # walk/catchup: the last id of the batch (the cursor once it is done)
    waiting: bool = False  # its plans ran; an upload answer is still to be found at Adobe
    shard: int | None = None  # the shard whose walk made it (None: the delivery's own)

    @property
    def id(self) -> str:
        return f"{self.walk}#{self.number:05d}"

    def to_json(self) -> Json:
        return {"walk": self.walk, "generation": self.generation, "number": self.number,
                "kind": str(self.kind), "ids_key": self.ids_key,
                "destinations": list(self.destinations), "last": self.last,
                "waiting": self.waiting, "shard": self.shard}  # fmt: skip

    @classmethod
    def from_json(cls, data: Json) -> InFlight:
        return cls(
            walk=str(data["walk"]),
            generation=str(data["generation"]),
            number=int(data["number"]),
            kind=BatchKind(data["kind"]),
            ids_key=str(data["ids_key"]),
            destinations=tuple(data.get("destinations", ())),
            last=str(data.get("last", "")),
            waiting=bool(data.get("waiting", False)),
            shard=data.get("shard"),
        )


ShardRange = tuple[str | None, str | None]  # (after, until] of the sorted pending stream


def walk_key(generation: str, shard: int | None) -> str:
    return generation if shard is None else f"{generation}#s{shard}"


@dataclass
class CatchUp:
    """Destinations added while a walk was under way: the stream up to ``until`` (the walk's
    cursor when they were added) is walked again for them alone."""

    destinations: tuple[str, ...]
    until: str
    cursor: str | None = None

    def to_json(self) -> Json:
        return {"destinations": list(self.destinations), "until": self.until,
                "cursor": self.cursor}  # fmt: skip

    @classmethod
    def from_json(cls, data: Json) -> CatchUp:
        return cls(tuple(data["destinations"]), str(data["until"]), data.get("cursor"))


@dataclass
class Walk:
    """A delivery generation's progress: a position in its sorted pending stream (the last id
    finished), never a batch number whose meaning depends on a setting. Batches under way are
    ``InFlight`` records beside it, never fields of the walk: a re-delivery (a new walk) cannot
    hide them."""

    generation: str
    walk_id: str = ""  # set when the walk is first saved; in every claim and file name
    shard: int | None = None  # a shard's walk (``walk#<generation>#s<n>``); None: the delivery's
    cursor: str | None = None  # the last pending id finished; None before the first batch
    next_batch: int = 0  # batch numbers name files; they never repeat within a walk
    done: bool = False  # every pending id of the stream has been through a batch
    destinations: tuple[str, ...] = ()  # the destinations the walk has served from the start
    catchup: CatchUp | None = None
    # a sharded delivery's walk: the shards' ranges of the pending stream, each walked by a
    # shard walk of its own (``walk#<generation>#s<n>``); this walk is done when all are
    shards: list[ShardRange] = field(default_factory=list)
    shard_runs: int = 0  # the shard runner's starts for this walk (a failed one is started anew)
    start: str | None = None  # a shard's walk: its range (start, until] of the stream
    until: str | None = None
    # batches counted in the figures whose in-flight record may still exist (a run killed
    # between counting a batch and dropping its record counts it once): at most the batches
    # in flight
    counted: list[str] = field(default_factory=list)
    figures: BatchFigures = field(default_factory=BatchFigures)  # the walk, once per visitor
    retries: BatchFigures = field(default_factory=BatchFigures)  # re-sends after a failure
    version: int = 0  # bumped by every save; a save expecting another version is refused

    def to_json(self) -> Json:
        return {
            "generation": self.generation,
            "walk_id": self.walk_id,
            "shard": self.shard,
            "cursor": self.cursor,
            "next_batch": self.next_batch,
            "done": self.done,
            "destinations": list(self.destinations),
            "catchup": self.catchup.to_json() if self.catchup else None,
            "shards": [list(r) for r in self.shards],
            "shard_runs": self.shard_runs,
            "start": self.start,
            "until": self.until,
            "counted": list(self.counted),
            "figures": self.figures.to_json(),
            "retries": self.retries.to_json(),
            "version": self.version,
        }

    @property
    def key(self) -> str:
        """The walk record's name: its generation, and its shard for a shard's walk."""
        return walk_key(self.generation, self.shard)

    @classmethod
    def from_json(cls, data: Json) -> Walk:
        return cls(
            generation=str(data["generation"]),
            walk_id=str(data.get("walk_id", "")),
            shard=data.get("shard"),
            cursor=data.get("cursor"),
            next_batch=int(data.get("next_batch", 0)),
            done=bool(data.get("done", False)),
            destinations=tuple(data.get("destinations", ())),
            catchup=CatchUp.from_json(data["catchup"]) if data.get("catchup") else None,
            shards=[(a, b) for a, b in data.get("shards", [])],
            shard_runs=int(data.get("shard_runs", 0)),
            start=data.get("start"),
            until=data.get("until"),
            counted=[str(c) for c in data.get("counted", [])],
            figures=BatchFigures.from_json(data.get("figures") or {}),
            retries=BatchFigures.from_json(data.get("retries") or {}),
            version=int(data.get("version", 0)),
        )


@dataclass(frozen=True)
class LockHolder:
    owner: str
    until: float  # epoch seconds the lease ends
    renewed_at: float  # last heartbeat
