"""Bulk Data Insertion: gzip CSV hits (a custom link per matched visitor carrying the eVars).

The idempotency key (generation, batch, part) identifies a file; after a lost answer the key
lookup tells whether Adobe has it. Adobe's verdict is the file's ``status_code``: ``REJECTED``
or ``ERROR`` fail it (its visitors are sent again), ``UPLOADED`` and ``PROCESSING`` are still
pending, ``COMPLETE`` accepts it with ``invalid_rows`` rows skipped (counted and reported);
anything else is an error, never a success (AdobeDocs/analytics-2.0-apis
``static/bulk-data-insertion.json`` and bulk-data-insertion ``endpoints.md``).
"""

from __future__ import annotations

import datetime as dt
import re

from feedsync import __version__
from feedsync.adobe import bdia
from feedsync.adobe.bdia import BdiaClient
from feedsync.daily.destinations.base import (
    ACCEPTED,
    FAILED,
    PENDING,
    UNKNOWN,
    AdobeVerdict,
    Batch,
    BuiltFiles,
    UploadFile,
)
from feedsync.daily.mapping import MappedRow
from feedsync.state.records import JobRef, Rejected

NAME = "bdia"
# status_code values (static/bulk-data-insertion.json, UploadedFileInfo.status_code)
FAILED_CODES = frozenset({"REJECTED", "ERROR"})
PENDING_CODES = frozenset({"UPLOADED", "PROCESSING"})
SPEC = "analytics-2.0-apis static/bulk-data-insertion.json, UploadedFileInfo.status_code"
# Every status_code BDIA documents: COMPLETE with invalid_rows > 0 is a partial ingestion
# (the rows are not named: "not ingested, unknown which", alarmed), never all accepted.
VERDICTS: dict[str, tuple[str, str]] = {
    "UPLOADED": (PENDING, SPEC),
    "PROCESSING": (PENDING, SPEC),
    "COMPLETE": (ACCEPTED, SPEC + " (invalid_rows: not ingested, unknown which)"),
    "REJECTED": (FAILED, SPEC + " (the whole file refused: its visitors are sent again)"),
    "ERROR": (FAILED, SPEC + " (nothing ingested: its visitors are sent again)"),
}
BASE_COLUMNS = (
    "marketingCloudVisitorID",
    "timestamp",
    "reportSuiteID",
    "userAgent",
    "linkType",
    "linkName",
    "events",
)


def _evar_column(header: str) -> str | None:
    match = re.fullmatch(r"Evar (\d+)", header)
    return f"eVar{match.group(1)}" if match else None


def noon_utc(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())


class BdiaFiles:
    def __init__(self, max_bytes: int = bdia.MAX_GZIP_BYTES) -> None:
        self.max_bytes = max_bytes

    def build(self, batch: Batch) -> BuiltFiles:
        evars = {h: c for h in batch.mapping.columns.values() if (c := _evar_column(h))}
        columns = [*BASE_COLUMNS, *evars.values()]
        event = "event" + batch.mapping.success_event.split()[-1]
        out = BuiltFiles()
        kept: list[MappedRow] = []
        for row in batch.rows:
            if bdia.is_ecid(row.visitor):
                kept.append(row)
            else:  # BASE_COLUMNS send it as marketingCloudVisitorID (mid)
                out.rejected.append(
                    Rejected(row.visitor, "not an Experience Cloud ID (38 digits) for BDIA")
                )
        stamp = str(noon_utc(batch.day))
        rows = (
            {
                "marketingCloudVisitorID": row.visitor,
                "timestamp": stamp,
                "reportSuiteID": batch.rsid,
                "userAgent": f"feedsync/{__version__}",
                "linkType": "o",
                "linkName": "feedsync CRM enrichment",
                "events": event,
                **{column: row.values.get(header, "") for header, column in evars.items()},
            }
            for row in kept
        )
        parts = bdia.write_files(columns, rows, self.max_bytes) if kept else []
        visitors = _split_visitors(kept, parts)
        out.files = [
            UploadFile(f"{batch.stem}_p{n}.csv.gz", data, tuple(v), n)
            for n, (data, v) in enumerate(zip(parts, visitors, strict=True), start=1)
        ]
        return out


def _split_visitors(rows: list[MappedRow], parts: list[bytes]) -> list[list[str]]:
    """Which visitors went into which part (write_files keeps the row order)."""
    import gzip

    out, start = [], 0
    for data in parts:
        count = gzip.decompress(data).count(b"\n") - 1  # one line per row; ids hold no newline
        out.append([r.visitor for r in rows[start : start + count]])
        start += count
    return out


class BdiaSender:
    resend_is_harmless = False

    def __init__(self, client: BdiaClient, visitor_group: str) -> None:
        self.client = client
        self.visitor_group = visitor_group

    def _ref(self, batch: Batch, upload: UploadFile, answer: dict[str, object]) -> JobRef:
        rows = answer.get("rows")
        status = answer.get("status_code")
        return JobRef(
            file=upload.name,
            destination=NAME,
            idempotency_key=batch.key(upload.part),
            rows=int(rows) if isinstance(rows, int) else None,
            status=str(status) if status else None,
            job_id=str(answer.get("file_id") or "") or None,
        )

    def send(self, batch: Batch, upload: UploadFile) -> JobRef:
        answer = self.client.upload_once(upload.data, self.visitor_group, batch.key(upload.part))
        return self._ref(batch, upload, answer)

    def find(self, batch: Batch, upload: UploadFile) -> JobRef | None:
        known = self.client.key_status(batch.key(upload.part))
        return None if known is None else self._ref(batch, upload, known)

    def verdict(self, rsid: str, job: JobRef) -> AdobeVerdict:
        """Adobe's word on the file: the upload answer's ``status_code`` when it already failed
        the file, else the key lookup's (static/bulk-data-insertion.json, UploadedFileInfo:
        REJECTED, UPLOADED, PROCESSING, COMPLETE, ERROR). A lookup that answers without a
        status (endpoints.md's example) says the file arrived, which is all it reports."""
        if job.status and job.status.upper() in FAILED_CODES:
            return AdobeVerdict(FAILED, job.status, "the upload answer refused the file")
        known = self.client.key_status(str(job.idempotency_key))
        if known is None:
            return AdobeVerdict(FAILED, "not found", "the key lookup does not know this file")
        code = str(known.get("status_code") or "").upper()
        detail = str(known.get("processing_log") or known.get("status") or "")
        skipped = int(known.get("invalid_rows") or 0)
        if not code:
            return AdobeVerdict(ACCEPTED, "received", "the key lookup reports no status")
        outcome = VERDICTS.get(code, (UNKNOWN, ""))[0]
        return AdobeVerdict(outcome, code, detail,
                            skipped_rows=skipped if outcome == ACCEPTED else 0)  # fmt: skip
