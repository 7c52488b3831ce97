"""Marketo Bulk Lead Extract: create, enqueue, poll, download (resumable), verify.

Source: AdobeDocs/marketo-apis static/swagger-mapi.json (createExportLeadsUsingPOST,
enqueueExportLeadsUsingPOST, getExportLeadsStatusUsingGET, getExportLeadsFileUsingGET with
``Range``). A job filters leads by ``updatedAt`` (or ``createdAt``) over at most 31 days; its
status goes Created -> Queued -> Processing -> Completed | Failed | Canceled; a completed job
has ``fileSize`` and ``fileChecksum`` (SHA-256 of the file). Marketo runs 2 jobs at once and
queues 10, exports at most 500 MB a day per subscription (error 1029 when a limit is hit), and
answers 1035 when the subscription cannot filter on the field. Only the API user who created a
job may read its file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from feedsync.crm.marketo import MarketoClient, MarketoError
from feedsync.deadline import Deadline
from feedsync.errors import ApiError, QuotaExhaustedError

SERVICE = "Marketo bulk extract"
EXPORT = "/bulk/v1/leads/export"
FINAL = frozenset({"Completed", "Failed", "Canceled", "Cancelled"})
LIMIT_CODE = "1029"  # too many jobs queued, or the daily export allocation is used up
UNSUPPORTED_FILTER = "1035"
MAX_WINDOW = dt.timedelta(days=31)
DOWNLOAD_ATTEMPTS = 3

logger = logging.getLogger(__name__)


class ExportLimitError(QuotaExhaustedError):
    """Marketo's export queue or daily allocation is full: stop, continue tomorrow."""


class UnsupportedFilterError(MarketoError):
    """The subscription cannot filter exports on this field (1035)."""


class ChecksumError(ApiError):
    """The downloaded file does not match Marketo's fileChecksum (after retries)."""


@dataclass(frozen=True)
class ExportJob:
    export_id: str
    status: str
    file_size: int | None = None
    checksum: str | None = None  # hex SHA-256
    records: int | None = None
    error: str = ""
    created_at: str = ""

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> ExportJob:
        checksum = str(result.get("fileChecksum") or "").removeprefix("sha256:") or None
        size = result.get("fileSize")
        records = result.get("numberOfRecords")
        return cls(
            export_id=str(result.get("exportId", "")),
            status=str(result.get("status", "")),
            file_size=int(size) if size is not None else None,
            checksum=checksum,
            records=int(records) if records is not None else None,
            error=str(result.get("errorMsg") or ""),
            created_at=str(result.get("createdAt") or ""),
        )

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ExportJob:
        return cls.from_result((body.get("result") or [{}])[0])


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BulkLeadExtract:
    def __init__(
        self,
        client: MarketoClient,
        poll: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.poll = poll  # Marketo asks for status no more than about once a minute
        self._sleep = sleep

    def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> ExportJob:
        try:
            return ExportJob.from_body(self.client.request(method, path, operation, **kwargs))
        except MarketoError as exc:
            if exc.code == LIMIT_CODE:
                raise ExportLimitError(SERVICE, exc.detail, code=exc.code) from None
            if exc.code == UNSUPPORTED_FILTER:
                raise UnsupportedFilterError(SERVICE, exc.detail, code=exc.code) from None
            raise

    def create(
        self, fields: Sequence[str], filter_field: str, start: dt.datetime, end: dt.datetime
    ) -> ExportJob:
        if end - start > MAX_WINDOW:
            raise ValueError("a bulk export window is at most 31 days")
        body = {
            "fields": list(fields),
            "format": "CSV",
            "filter": {filter_field: {"startAt": iso(start), "endAt": iso(end)}},
        }
        # not idempotent: a repeated create is a second job (a lost answer is looked up instead)
        return self._call(
            "POST", f"{EXPORT}/create.json", "create export", idempotent=False, json=body
        )

    def enqueue(self, export_id: str) -> ExportJob:
        return self._call("POST", f"{EXPORT}/{export_id}/enqueue.json", "enqueue export")

    def jobs(self, statuses: Sequence[str]) -> list[ExportJob]:
        """Export jobs of the last seven days in ``statuses`` (getExportLeadsUsingGET), all
        pages, newest first."""
        found: list[ExportJob] = []
        params: dict[str, Any] = {"status": ",".join(statuses), "batchSize": 300}
        while True:
            body = self.client.request("GET", f"{EXPORT}.json", "export jobs", params=params)
            found.extend(ExportJob.from_result(r) for r in body.get("result") or [])
            token = body.get("nextPageToken")
            if not token or not body.get("result"):
                return sorted(found, key=lambda j: j.created_at, reverse=True)
            params["nextPageToken"] = token

    def status(self, export_id: str) -> ExportJob:
        return self._call("GET", f"{EXPORT}/{export_id}/status.json", "export status")

    def wait(self, export_id: str, deadline: Deadline) -> ExportJob | None:
        """Poll until the job is final; None when the invocation runs short (look again later)."""
        job = self.status(export_id)
        while job.status not in FINAL:
            if not deadline.allows(self.poll + 30.0):
                return None
            self._sleep(self.poll)
            job = self.status(export_id)
        return job

    def download(self, job: ExportJob, out: IO[bytes]) -> int:
        """Write the job's file to ``out``, resuming with ``Range`` after a broken transfer, and
        check its SHA-256; a mismatch is downloaded again (ChecksumError after 3 attempts)."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            out.seek(0)
            out.truncate()
            digest, size = self._fetch(job, out)
            if job.checksum is None or digest == job.checksum.lower():
                return size
            logger.warning("export %s: checksum mismatch (attempt %d)", job.export_id, attempt)
        raise ChecksumError(
            SERVICE, f"export {job.export_id}: the file never matched its fileChecksum"
        )

    def _fetch(self, job: ExportJob, out: IO[bytes]) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        path = f"{EXPORT}/{job.export_id}/file.json"
        while True:
            piece = self.client.download(path, start=size)
            out.write(piece)
            digest.update(piece)
            size += len(piece)
            if job.file_size is None or size >= job.file_size or not piece:
                return digest.hexdigest(), size
