"""Marketo stand-in, bulk lead extract (AdobeDocs/marketo-apis static/swagger-mapi.json:
createExportLeadsUsingPOST, enqueueExportLeadsUsingPOST, getExportLeadsStatusUsingGET,
getExportLeadsFileUsingGET with Range).

Rules from Marketo's bulk extract documentation (and the error codes page for 1029's three
meanings: queue full, daily quota exceeded, job already queued; getExportLeadsUsingGET lists
the last seven days' jobs): a filter on ``createdAt`` or ``updatedAt`` spans
at most 31 days; statuses Created -> Queued -> Processing -> Completed (each status call moves a
job on); 2 jobs process at once and 10 wait in the queue (error 1029 beyond); a subscription
exports at most ``daily_export_bytes`` a day (500 MB; error 1029); a subscription without the
updatedAt filter answers 1035; only the API user who created a job reads its file; a completed
job has ``fileSize`` and ``fileChecksum`` (SHA-256) and the file honours ``Range``.
Faults for tests: ``corrupt_next`` (serve wrong bytes), ``short_next`` (a broken transfer).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.server import Request, Response

if TYPE_CHECKING:
    from sandbox.marketo import MarketoStandIn

MAX_DAYS = 31
MAX_PROCESSING, MAX_QUEUED = 2, 10


def _word(status: str) -> str:
    """A job status as the list filter spells it (Canceled is ``cancelled`` there)."""
    return "cancelled" if status == "Canceled" else status.lower()


def _ok(result: dict[str, Any]) -> Response:
    return Response.json({"requestId": secrets.token_hex(4), "success": True, "result": [result]})


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class ExportJob:
    export_id: str
    creator: str  # the client id whose token created it
    fields: list[str]
    filter_field: str
    start: dt.datetime
    end: dt.datetime
    status: str = "Created"
    data: bytes = b""
    records: int = 0
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def public(self) -> dict[str, Any]:
        done = self.status == "Completed"
        return {
            "exportId": self.export_id,
            "format": "CSV",
            "status": self.status,
            "createdAt": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fileSize": len(self.data) if done else None,
            "fileChecksum": f"sha256:{hashlib.sha256(self.data).hexdigest()}" if done else None,
            "numberOfRecords": self.records if done else None,
        }


@dataclass
class BulkExportStandIn:
    marketo: MarketoStandIn
    daily_export_bytes: int = 500 * 1024 * 1024
    supports_updated_at: bool = True
    jobs: dict[str, ExportJob] = field(default_factory=dict)
    exported_bytes: int = 0
    corrupt_next: int = 0
    short_next: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def register(self) -> None:
        route = self.marketo.server.route
        route("GET", r"/bulk/v1/leads/export\.json", self.list_jobs)
        route("POST", r"/bulk/v1/leads/export/create\.json", self.create)
        route("POST", r"/bulk/v1/leads/export/([^/]+)/enqueue\.json", self.enqueue)
        route("GET", r"/bulk/v1/leads/export/([^/]+)/status\.json", self.status)
        route("GET", r"/bulk/v1/leads/export/([^/]+)/file\.json", self.file)

    def _caller(self, request: Request) -> str | Response:
        """The API user behind the token (only the job's creator may read its file)."""
        refused = self.marketo.check_token(request)
        return refused if refused is not None else self.marketo.client_id

    def create(self, request: Request, _: re.Match[str]) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        body = request.json()
        filters = body.get("filter") or {}
        name = next((k for k in ("updatedAt", "createdAt") if k in filters), None)
        if not body.get("fields") or name is None:
            return self.marketo.refuse(
                "1003", "fields and a createdAt/updatedAt filter are required"
            )
        if name == "updatedAt" and not self.supports_updated_at:
            return self.marketo.refuse(
                "1035", "Unsupported filter type for target subscription: updatedAt"
            )
        start, end = _when(filters[name]["startAt"]), _when(filters[name]["endAt"])
        if end - start > dt.timedelta(days=MAX_DAYS):
            return self.marketo.refuse("1003", f"Date range exceeds {MAX_DAYS} days")
        job = ExportJob(secrets.token_hex(8), caller, list(body["fields"]), name, start, end)
        with self.lock:
            self.jobs[job.export_id] = job
        return _ok(job.public())

    def enqueue(self, request: Request, m: re.Match[str]) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        with self.lock:
            job = self.jobs.get(m[1])
            if job is None:
                return self.marketo.refuse("1029", "Export job not found")  # 1029 family per docs
            queued = sum(1 for j in self.jobs.values() if j.status == "Queued")
            if queued >= MAX_QUEUED:
                return self.marketo.refuse("1029", f"Too many jobs ({MAX_QUEUED}) in queue")
            if self.exported_bytes >= self.daily_export_bytes:
                mb = self.daily_export_bytes // (1024 * 1024)
                return self.marketo.refuse("1029", f"Export daily quota {mb}MB exceeded")
            if job.status != "Created":
                # error codes page: 1029 also answers "Job already queued"
                return self.marketo.refuse("1029", "Job already queued")
            job.status = "Queued"
            return _ok(job.public())

    def list_jobs(self, request: Request, _: re.Match[str]) -> Response:
        # getExportLeadsUsingGET: the jobs of the last seven days, ``status`` a comma list
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        # swagger-mapi.json: ``status`` is a comma list of the lower-case enum (created, queued,
        # processing, cancelled, completed, failed); ``batchSize`` at most and by default 300;
        # a ``nextPageToken`` while more jobs remain
        wanted = {s.lower() for s in request.param("status").split(",") if s}
        week = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        size = min(300, int(request.param("batchSize") or 300))
        start = int(request.param("nextPageToken") or 0)
        with self.lock:
            found = [
                j.public()
                for j in self.jobs.values()
                if j.created_at >= week and (not wanted or _word(j.status) in wanted)
            ]
        body: dict[str, Any] = {"requestId": secrets.token_hex(4), "success": True,
                                "result": found[start : start + size]}  # fmt: skip
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        return Response.json(body)

    def status(self, request: Request, m: re.Match[str]) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        with self.lock:
            job = self.jobs.get(m[1])
            if job is None:
                return self.marketo.refuse("1029", "Export job not found")
            self._advance(job)
            return _ok(job.public())

    def _advance(self, job: ExportJob) -> None:
        processing = sum(1 for j in self.jobs.values() if j.status == "Processing")
        if job.status == "Queued" and processing < MAX_PROCESSING:
            job.status = "Processing"
        elif job.status == "Processing":
            job.data, job.records = self._render(job)
            self.exported_bytes += len(job.data)
            job.status = "Completed"

    def _render(self, job: ExportJob) -> tuple[bytes, int]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job.fields)
        rows = 0
        for lead in self.marketo.all_leads():
            moment = lead.get(job.filter_field)
            if moment is not None and job.start <= _when(moment) <= job.end:  # both inclusive
                writer.writerow(["" if lead.get(f) is None else lead.get(f) for f in job.fields])
                rows += 1
        return out.getvalue().encode("utf-8"), rows

    def file(self, request: Request, m: re.Match[str]) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        with self.lock:
            job = self.jobs.get(m[1])
            if job is None or job.status != "Completed" or job.creator != caller:
                return self.marketo.refuse("1029", "Export file not available to this user")
            data = job.data
            if self.corrupt_next:
                self.corrupt_next -= 1
                data = data[:-2] + b"!\n" if len(data) > 2 else b"corrupt"
            start = int(request.header("range").removeprefix("bytes=").split("-")[0] or 0)
            piece = data[start:]
            if self.short_next and len(piece) > 1:
                self.short_next -= 1
                piece = piece[: len(piece) // 2]  # a broken transfer: the client resumes
        status = 206 if start else 200
        return Response(status, piece, {"Content-Type": "text/csv"})
