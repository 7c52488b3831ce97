"""Bulk Data Insertion: gzip CSV hits (a custom link per matched visitor carrying the eVars).

The idempotency key (generation, batch, attempt, part) identifies a file; after a lost answer
the key lookup tells whether Adobe has it. Adobe's verdict is the upload answer's
``status_code`` (``UPLOADED`` or ``REJECTED``); a file found only through the key lookup has
arrived, which is all the API reports (AdobeDocs/analytics-2.0-apis bulk-data-insertion
``endpoints.md``).
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
    AdobeVerdict,
    Batch,
    BuiltFiles,
    UploadFile,
)
from feedsync.daily.mapping import MappedRow
from feedsync.state.records import JobRef, Rejected

NAME = "bdia"
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
        if job.status:  # the upload answer carried Adobe's decision
            outcome = FAILED if job.status.upper() == "REJECTED" else ACCEPTED
            return AdobeVerdict(outcome, job.status)
        known = self.client.key_status(str(job.idempotency_key))
        if known is None:
            return AdobeVerdict(FAILED, "not found", "the key lookup does not know this file")
        status = str(known.get("status_code") or "received")
        outcome = FAILED if status.upper() == "REJECTED" else ACCEPTED
        return AdobeVerdict(outcome, status, str(known.get("processing_log") or ""))
