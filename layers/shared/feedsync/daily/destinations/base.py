"""What every destination is made of: a file builder (pure, no network) and a sender.

A destination turns a batch's mapped rows into files once (``build``), as data the run stores
in the state bucket before anything is sent; the sender then sends each file, finds a file an
earlier attempt may have delivered, and asks Adobe for its verdict later (reconciliation). A dry
run pairs the same builder with a sender that sends nothing.

Every identity Adobe sees for a file (file name, idempotency key) carries the delivery's content
generation, the walk id and the batch number (a re-send after a failure is a new batch; a walk
started after a forget or a re-parse has a new id), so a re-delivered day, a re-send or a
delivery started over is never mistaken for the upload before it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from feedsync.daily.mapping import MappedRow, Mapping
from feedsync.state.records import JobRef, Rejected


@dataclass(frozen=True)
class Batch:
    rsid: str
    day: dt.date
    delivery: str  # delivery id, e.g. acmeprod_2015-07-13
    run: str  # the run key (the delivery key, with a dry-run prefix when dry)
    generation: str
    index: int  # the batch number: unique within a walk (re-sends get new numbers)
    rows: list[MappedRow]
    mapping: Mapping
    walk: str = ""  # the walk id: unique for ever (a forget or re-parse starts a new walk)

    @property
    def stem(self) -> str:
        walk = f"_w{self.walk}" if self.walk else ""
        return f"feedsync_{self.delivery}_g{self.generation[:8]}{walk}_b{self.index:05d}"

    def key(self, part: int) -> str:
        """Deterministic idempotency key: the same batch part always gets the same key."""
        text = f"{self.run}@{self.generation}/{self.walk}|{self.index}|{part}"
        return f"feedsync-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class UploadFile:
    name: str
    data: bytes
    visitors: tuple[str, ...]  # whose rows it holds (released again if Adobe fails the file)
    part: int = 1


@dataclass
class BuiltFiles:
    files: list[UploadFile] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)  # rows the destination's rules refuse


@dataclass(frozen=True)
class AdobeVerdict:
    """What Adobe says of a sent file now.

    ``accepted`` with ``skipped_rows`` > 0 is a *partial* ingestion: ``not_ingested`` names
    the visitors Adobe refused with its reason (they become ``rejected``, never accepted);
    ``skipped_rows - len(not_ingested)`` more were refused without Adobe saying which (the file
    is reported "partially ingested ... unknown which" and alarmed)."""

    outcome: str  # accepted | failed | pending | stuck | unknown (undocumented: an error)
    status: str  # Adobe's own word (success, failure, processing, complete, stuck, UPLOADED...)
    detail: str = ""
    skipped_rows: int = 0  # rows of an accepted file Adobe did not ingest
    not_ingested: tuple[Rejected, ...] = ()  # the ones Adobe named, with its reason

    @property
    def unknown_which(self) -> int:
        return max(0, self.skipped_rows - len(self.not_ingested))


# stuck: Adobe itself says the file is stuck without failing it (Platform ``stalled``): reported
# and alarmed at once, asked again every run
ACCEPTED, FAILED, PENDING, STUCK, UNKNOWN = "accepted", "failed", "pending", "stuck", "unknown"


class FileBuilder(Protocol):
    def build(self, batch: Batch) -> BuiltFiles: ...


class Sender(Protocol):
    # True when sending a file twice does no harm (Target rewrites the same values): no lookup
    # and no settle wait before a re-send.
    resend_is_harmless: bool

    def send(self, batch: Batch, upload: UploadFile) -> JobRef:
        """Send one file; OutcomeUnknownError when the answer was lost (look again later)."""
        ...

    def find(self, batch: Batch, upload: UploadFile) -> JobRef | None:
        """The job an earlier attempt created for this very file, or None."""
        ...

    def verdict(self, rsid: str, job: JobRef) -> AdobeVerdict: ...


@dataclass(frozen=True)
class Destination:
    name: str
    builder: FileBuilder
    sender: Sender
    dry_run: bool = False
