"""Data Sources 2.0: accounts, file uploads (multipart ``file``), jobs.

Uploads are not idempotent and have no idempotency key, so a lost answer is resolved by looking
for a job with the same file name before sending again. feedsync names its files
deterministically (delivery + part) for exactly this reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.datasource_file import MAX_FILE_BYTES
from feedsync.adobe.errors import AdobeApiError
from feedsync.adobe.pages import all_pages
from feedsync.deadline import Deadline
from feedsync.errors import OutcomeUnknownError

SERVICE = "Adobe Data Sources"
JOB_STATUSES = ("uploaded", "processing", "success", "failure", "deleted")
FINAL_STATUSES = frozenset({"success", "failure", "deleted"})
UPLOAD_ATTEMPTS = 3


class DataSourcesClient:
    def __init__(
        self,
        analytics: AnalyticsClient,
        settle: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.analytics = analytics
        # After a lost answer the first attempt may still be in flight on Adobe's side; look
        # twice, ``settle`` seconds apart, before concluding it never arrived.
        self.settle = settle
        self._sleep = sleep

    # accounts
    def accounts(self, rsid: str) -> list[dict[str, Any]]:
        body = self.analytics.get(f"datasources/account/{rsid}")
        return list(body) if isinstance(body, list) else list(body.get("content", []))

    def account(self, rsid: str, data_source_id: str | int) -> dict[str, Any]:
        body: dict[str, Any] = self.analytics.get(f"datasources/account/{rsid}/{data_source_id}")
        return body

    def create_account(
        self, rsid: str, name: str, email: str, kind: str = "generic"
    ) -> dict[str, Any]:
        """Not idempotent: after a lost answer, look the account up by name before retrying."""
        try:
            body: dict[str, Any] = self.analytics.call(
                "POST",
                f"datasources/account/{rsid}",
                params={"type": kind, "name": name, "email": email},
            )
            return body
        except OutcomeUnknownError:
            for account in self.accounts(rsid):
                if account.get("name") == name:
                    return account
            raise

    def delete_account(self, rsid: str, data_source_id: str | int) -> dict[str, Any]:
        body: dict[str, Any] = self.analytics.call(
            "DELETE", f"datasources/account/{rsid}/{data_source_id}"
        )
        return body

    # jobs
    def jobs(
        self,
        rsid: str,
        data_source_id: str | int,
        status: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every job (all pages); without ``status``, of every status (the API needs one)."""
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"status {status!r}; expected one of {', '.join(JOB_STATUSES)}")
        for each in (status,) if status else JOB_STATUSES:

            def fetch(page: int, each: str | None = each) -> tuple[list[Any], bool]:
                params = {"status": each, "page": page}
                if start_date:
                    params["start_date"] = start_date
                if end_date:
                    params["end_date"] = end_date
                body = self.analytics.get(f"datasources/job/{rsid}/{data_source_id}", **params)
                jobs = list(body.get("jobs", []))
                return jobs, page >= int(body.get("total_pages", page))

            yield from all_pages(fetch, first=1)

    def job(self, rsid: str, data_source_id: str | int, job_id: str | int) -> dict[str, Any]:
        body: dict[str, Any] = self.analytics.get(
            f"datasources/job/{rsid}/{data_source_id}/{job_id}"
        )
        return body

    def find_job(
        self, rsid: str, data_source_id: str | int, filename: str
    ) -> dict[str, Any] | None:
        for job in self.jobs(rsid, data_source_id):
            if job.get("filename") == filename and job.get("status") != "deleted":
                return job
        return None

    def upload_once(
        self, rsid: str, data_source_id: str | int, filename: str, data: bytes
    ) -> dict[str, Any]:
        """One POST of one file: the job, or OutcomeUnknownError when the answer was lost.

        The daily run uses this and looks for the file again in a later run (after
        ``ADOBE_SETTLE_SECONDS``) rather than re-sending while Adobe may still be listing it.
        """
        if len(data) >= MAX_FILE_BYTES:
            raise AdobeApiError(
                SERVICE, f"{filename} is {len(data)} bytes; split it under {MAX_FILE_BYTES}"
            )
        body: dict[str, Any] = self.analytics.call(
            "POST",
            f"datasources/job/{rsid}/{data_source_id}",
            files={"file": (filename, data, "text/plain")},
        )
        return body

    def upload(
        self, rsid: str, data_source_id: str | int, filename: str, data: bytes
    ) -> dict[str, Any]:
        """Upload one file now (the CLI): after a lost answer, look for the job by file name
        twice, ``settle`` seconds apart, and re-send only when it is not there."""
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                return self.upload_once(rsid, data_source_id, filename, data)
            except OutcomeUnknownError:
                existing = self.find_job(rsid, data_source_id, filename)
                if existing is None:
                    self._sleep(self.settle)
                    existing = self.find_job(rsid, data_source_id, filename)
                if existing is not None:
                    return existing
                if attempt == UPLOAD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(
        self,
        rsid: str,
        data_source_id: str | int,
        job_id: str | int,
        deadline: Deadline,
        poll: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is success/failure/deleted or the deadline; returns the last state."""
        while True:
            job = self.job(rsid, data_source_id, job_id)
            if on_poll is not None:
                on_poll(job)
            if job.get("status") in FINAL_STATUSES or not deadline.allows(poll + 1.0):
                return job
            sleep(min(poll, max(0.0, deadline.remaining() - 1.0)))
