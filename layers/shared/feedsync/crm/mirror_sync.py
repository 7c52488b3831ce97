"""Keep the CRM mirror current: bulk-extract what changed since the watermark, window by window.

Each run asks Marketo for the leads updated (``updatedAt``) since the mirror's watermark, in
windows of at most 31 days; the first run walks back ``initial_days`` (365). A subscription
that cannot filter on ``updatedAt`` (error 1035) is served by ``createdAt`` (new leads only).
A full queue or a used-up daily allocation (1029) stops cleanly; so does an export still
running when the invocation runs short: the export is remembered in the mirror's index and the
next run resumes it. A download whose SHA-256 does not match is fetched again, never merged.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from feedsync.crm.bulk_extract import (
    MAX_WINDOW,
    BulkLeadExtract,
    ExportJob,
    ExportLimitError,
    UnsupportedFilterError,
    iso,
)
from feedsync.crm.mirror import Mirror, Record
from feedsync.deadline import Deadline
from feedsync.errors import ApiError, OutcomeUnknownError

logger = logging.getLogger(__name__)
UPDATED = "updatedAt"
# A job whose create answer was lost has never been enqueued (only we enqueue our jobs), so it
# can only be ``Created``. A queued, running or finished job within the same minute is an
# earlier window's (windows follow each other within seconds): adopting it would merge that
# window's rows under this window's watermark and skip this window's leads for ever.
ADOPTABLE = ("created",)  # getExportLeadsUsingGET's status enum is lower-case


@dataclass
class SyncReport:
    status: str = "current"  # current | export running | allocation exhausted | failed
    windows: int = 0
    records: int = 0
    watermark: str = ""
    filter: str = UPDATED
    detail: str = ""
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def read_extract(raw: IO[bytes], id_field: str, fields: Sequence[str]) -> Iterator[Record]:
    """(visitor id, fields) of each exported lead (CSV, header row); an export of other
    fields (not the mirror's) is refused before any row is read."""
    text = codecs.getreader("utf-8-sig")(raw)
    reader = csv.DictReader(text)
    header = reader.fieldnames or []
    if set(header) != {id_field, *fields}:
        raise ApiError(
            "Marketo bulk extract",
            f"the export's columns {header} are not the mirror's {[id_field, *fields]}",
        )
    for row in reader:
        visitor = (row.get(id_field) or "").strip()
        yield visitor, {f: row.get(f, "") for f in fields if f != id_field}


class MirrorSync:
    def __init__(
        self,
        extract: BulkLeadExtract,
        mirror: Mirror,
        initial_days: int = 365,
        now: dt.datetime | None = None,
    ) -> None:
        self.extract = extract
        self.mirror = mirror
        self.initial_days = initial_days
        self.now = now or dt.datetime.now(dt.UTC)

    @property
    def fields(self) -> list[str]:
        return [self.mirror.id_field, *self.mirror.index.fields]

    def run(self, deadline: Deadline) -> SyncReport:
        index = self.mirror.index
        start = (
            _parse(index.watermark)
            if index.watermark
            else self.now - dt.timedelta(days=self.initial_days)
        )
        report = SyncReport(filter=index.filter)
        try:
            while start < self.now:
                end = min(start + MAX_WINDOW, self.now)
                job = self._finished_job(start, end, deadline, report)
                if job is None:
                    break
                report.records += self._merge(job, end)
                report.windows += 1
                start = end
        except ExportLimitError as exc:
            report.status, report.detail = "allocation exhausted", str(exc)
            logger.warning("Marketo export limit reached; the mirror continues tomorrow: %s", exc)
        except ApiError as exc:
            report.status, report.detail = "failed", str(exc)
            report.errors.append(str(exc))
        report.watermark, report.filter = self.mirror.index.watermark, self.mirror.index.filter
        return report

    def _job(self, start: dt.datetime, end: dt.datetime) -> ExportJob:
        index = self.mirror.index
        pending = index.pending or {}
        same = pending.get("start") == iso(start)
        if same and pending.get("export_id"):
            job = ExportJob(
                str(pending["export_id"]), "Queued" if pending.get("queued") else "Created"
            )
        else:
            job = (self._adopt(pending) if same and pending.get("creating") else None) or (
                self._create(start, end)
            )
            index.pending = {"export_id": job.export_id, "start": iso(start), "end": iso(end),
                             "queued": job.status != "Created"}  # fmt: skip
            self.mirror.save()
        if not index.pending or not index.pending.get("queued"):
            self._enqueue(job.export_id)
            index.pending = {**(index.pending or {}), "queued": True}
            self.mirror.save()
        return job

    def _create(self, start: dt.datetime, end: dt.datetime) -> ExportJob:
        """Create the window's export. The moment is saved first: when the answer is lost, the
        job Marketo made is found (``_adopt``) instead of a second one being created."""
        index = self.mirror.index
        index.pending = {"creating": iso(dt.datetime.now(dt.UTC)), "start": iso(start),
                         "end": iso(end)}  # fmt: skip
        self.mirror.save()
        try:
            try:
                return self.extract.create(self.fields, index.filter, start, end)
            except UnsupportedFilterError:
                if index.filter != UPDATED:
                    raise
                logger.warning(
                    "this subscription cannot filter exports on updatedAt; using createdAt"
                )
                index.filter = "createdAt"
                return self.extract.create(self.fields, index.filter, start, end)
        except OutcomeUnknownError:
            adopted = self._adopt(index.pending)
            if adopted is None:
                raise
            return adopted

    def _adopt(self, pending: dict[str, object]) -> ExportJob | None:
        """The job a create whose answer was lost made: the newest job still ``Created`` (never
        enqueued) since the create was sent (Marketo lists the last seven days' jobs). Its
        file's header is checked before anything is merged (read_extract)."""
        since = _parse(str(pending["creating"])) - dt.timedelta(minutes=1)
        for job in self.extract.jobs(ADOPTABLE):
            if job.status == "Created" and job.created_at and _parse(job.created_at) >= since:
                logger.warning("export %s: created by a call whose answer was lost; using it",
                               job.export_id)  # fmt: skip
                return job
        return None

    def _enqueue(self, export_id: str) -> None:
        """Marketo answers 1029 for a full queue, a used-up daily allocation and a job already
        queued (an earlier enqueue whose answer was lost): the job's status tells them apart."""
        try:
            self.extract.enqueue(export_id)
        except ExportLimitError:
            if self.extract.status(export_id).status == "Created":
                raise  # really a limit: the sync continues tomorrow
            logger.info("export %s was already queued (an earlier answer was lost)", export_id)

    def _finished_job(
        self, start: dt.datetime, end: dt.datetime, deadline: Deadline, report: SyncReport
    ) -> ExportJob | None:
        job = self.extract.wait(self._job(start, end).export_id, deadline)
        if job is None:
            report.status = "export running"
            report.detail = f"export {self.mirror.index.pending}: looked at again next run"
            return None
        if job.status != "Completed":
            self.mirror.index.pending = None
            self.mirror.save()
            raise ApiError(
                "Marketo bulk extract", f"export {job.export_id} {job.status}: {job.error}"
            )
        return job

    def _merge(self, job: ExportJob, end: dt.datetime) -> int:
        with tempfile.TemporaryFile(prefix="feedsync-extract-") as spool:
            self.extract.download(job, spool)  # checksum verified, else never merged
            spool.seek(0)
            records = list_counter(read_extract(spool, self.mirror.id_field, self.fields))
            self.mirror.merge(records, iso(end))
            return records.count


class list_counter:
    """Counts the records a generator yields while it is consumed once."""

    def __init__(self, records: Iterator[Record]) -> None:
        self.records = records
        self.count = 0

    def __iter__(self) -> Iterator[Record]:
        for record in self.records:
            self.count += 1
            yield record
