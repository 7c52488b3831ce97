"""Data Sources 1.4 ``DataSources.UploadData`` (legacy).

Adobe retired the 1.4 APIs in August 2026; this exists for accounts that still answer it.
A job is at most 100 calls of at most 10,000 rows and 50 MB; ``finished`` is true on the last
call only, and job names are alphanumeric.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from feedsync.adobe.errors import AdobeApiError, json_body
from feedsync.adobe.session import AdobeSession

SERVICE = "Adobe Data Sources 1.4"
MAX_ROWS_PER_CALL = 10_000
MAX_CALLS_PER_JOB = 100
MAX_JOB_BYTES = 50 * 1024 * 1024
_JOB_NAME = re.compile(r"[A-Za-z0-9]{1,100}")

logger = logging.getLogger(__name__)


def _chunks(rows: Iterable[Sequence[str]], size: int) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    for row in rows:
        chunk.append([str(v) for v in row])
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class LegacyDataSourcesClient:
    def __init__(self, session: AdobeSession) -> None:
        self.session = session

    def upload_data(
        self,
        rsid: str,
        data_source_id: str | int,
        job_name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        rows_per_call: int = MAX_ROWS_PER_CALL,
    ) -> dict[str, Any]:
        """Send ``rows`` as one job; returns ``{"calls": n, "rows": n, "job_name": ...}``."""
        if not _JOB_NAME.fullmatch(job_name):
            raise ValueError(f"job name {job_name!r}: 1.4 job names are letters and digits only")
        if not 1 <= rows_per_call <= MAX_ROWS_PER_CALL:
            raise ValueError(f"rows_per_call must be 1..{MAX_ROWS_PER_CALL}")
        logger.warning(
            "Data Sources 1.4 UploadData: Adobe retired the 1.4 APIs in August 2026; "
            "use the Data Sources 2.0 destination"
        )
        url = self.session.endpoints.analytics14
        calls = sent_rows = sent_bytes = 0
        chunks = _chunks(rows, rows_per_call)
        current = next(chunks, None)
        if current is None:
            raise ValueError("no rows to upload")
        while current is not None:
            following = next(chunks, None)  # look ahead: 'finished' only on the last call
            body = {
                "columns": list(columns),
                "dataSourceID": str(data_source_id),
                "finished": following is None,
                "jobName": job_name,
                "reportSuiteID": rsid,
                "rows": current,
            }
            payload = json.dumps(body, separators=(",", ":")).encode()
            calls += 1
            sent_bytes += len(payload)
            if calls > MAX_CALLS_PER_JOB or sent_bytes > MAX_JOB_BYTES:
                raise AdobeApiError(
                    SERVICE,
                    f"job {job_name} would exceed {MAX_CALLS_PER_JOB} calls or "
                    f"{MAX_JOB_BYTES} bytes; split the rows into several jobs",
                )
            response = self.session.request(
                SERVICE,
                "POST",
                url,
                idempotent=False,
                params={"method": "DataSources.UploadData"},
                data=payload,
                headers={"Content-Type": "application/json"},
            )
            json_body(SERVICE, response)
            sent_rows += len(current)
            current = following
        return {"job_name": job_name, "calls": calls, "rows": sent_rows}
