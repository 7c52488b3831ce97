"""Experience Platform: the matched visitors' CRM attributes as XDM records keyed by the ECID,
one Platform batch per file, followed in the Catalog to Adobe's verdict (for Customer Journey
Analytics, which reads the dataset).

Each file is one batch: created with a deterministic ``externalId`` (delivery, generation,
batch, part), its single JSON Lines file uploaded, then completed. A lost answer to the create
is looked up by that ``externalId`` (``find``): a batch found still ``loading`` gets its file
and its completion; one already completed is taken as it is - a batch is never created twice
nor completed twice. Files are cut under the 256 MB upload limit (one file per batch, well
under the documented files-per-batch limit).

Verdicts (catalog.yaml batchStatus): ``success`` -> accepted (``failedRecordCount`` records
skipped by Adobe are counted); ``failed``/``failure`` -> failed, its visitors released for a
re-send; ``processing``, ``loading``, ``staged``, ``retrying`` -> pending; any other status is
an error that alarms (VerdictErrors), never a silent success.
"""

from __future__ import annotations

import json

from feedsync.adobe.aep import MAX_FILE_BYTES, AepClient
from feedsync.adobe.session import AdobeSession
from feedsync.daily.aep_mapping import AepMapping, TypeProblem
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
from feedsync.errors import ConfigError
from feedsync.state.records import JobRef, Rejected

NAME = "aep"
PENDING_STATES = frozenset({"processing", "loading", "staged", "retrying"})
FAILED_STATES = frozenset({"failed", "failure"})


def _aep(batch: Batch) -> AepMapping:
    if batch.mapping.aep is None:
        raise ConfigError(
            f"{batch.mapping.source}: DESTINATIONS has aep but the mapping has no 'aep' section "
            "(dataset_id, sandbox, fields: see README 'Customer Journey Analytics')"
        )
    return batch.mapping.aep


class AepFiles:
    def __init__(self, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.max_bytes = max_bytes

    def build(self, batch: Batch) -> BuiltFiles:
        aep = _aep(batch)
        out = BuiltFiles()
        lines: list[bytes] = []
        visitors: list[str] = []
        size = 0
        for row in batch.rows:
            try:
                record = aep.record(row.visitor, row.attributes)
            except TypeProblem as exc:
                out.rejected.append(Rejected(row.visitor, str(exc)))
                continue
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            if lines and size + len(line) > self.max_bytes:
                out.files.append(self._file(batch, len(out.files) + 1, lines, visitors))
                lines, visitors, size = [], [], 0
            lines.append(line)
            visitors.append(row.visitor)
            size += len(line)
        if lines:
            out.files.append(self._file(batch, len(out.files) + 1, lines, visitors))
        return out

    @staticmethod
    def _file(batch: Batch, part: int, lines: list[bytes], visitors: list[str]) -> UploadFile:
        return UploadFile(f"{batch.stem}_p{part}.json", b"".join(lines), tuple(visitors), part)


class AepSender:
    resend_is_harmless = False

    def __init__(self, session: AdobeSession) -> None:
        self.session = session
        self._clients: dict[str, AepClient] = {}

    def client(self, sandbox: str) -> AepClient:
        if sandbox not in self._clients:
            self._clients[sandbox] = AepClient(self.session, sandbox)
        return self._clients[sandbox]

    @staticmethod
    def _ref(upload: UploadFile, batch_id: str, status: str, aep: AepMapping) -> JobRef:
        # the job id carries the sandbox: the verdict is read where the batch lives
        return JobRef(file=upload.name, destination=NAME, job_id=f"{aep.sandbox}/{batch_id}",
                      status=status)  # fmt: skip

    def send(self, batch: Batch, upload: UploadFile) -> JobRef:
        aep = _aep(batch)
        client = self.client(aep.sandbox)
        created = client.create_batch(aep.dataset_id, batch.key(upload.part))
        batch_id = str(created["id"])
        client.upload_file(batch_id, aep.dataset_id, upload.name, upload.data)
        client.complete_batch(batch_id)
        return self._ref(upload, batch_id, "completed", aep)

    def find(self, batch: Batch, upload: UploadFile) -> JobRef | None:
        aep = _aep(batch)
        client = self.client(aep.sandbox)
        found = client.find_batch(aep.dataset_id, batch.key(upload.part))
        if found is None:
            return None
        batch_id, record = found
        if str(record.get("status", "")).lower() == "loading":  # created, never completed
            client.upload_file(batch_id, aep.dataset_id, upload.name, upload.data)
            client.complete_batch(batch_id)
        return self._ref(upload, batch_id, str(record.get("status")), aep)

    def verdict(self, rsid: str, job: JobRef) -> AdobeVerdict:
        sandbox, _, batch_id = str(job.job_id).partition("/")
        found = self.client(sandbox).batch(batch_id)
        status = str(found.get("status", "unknown")).lower()
        if status == "success":
            skipped = int(found.get("failedRecordCount") or 0)
            return AdobeVerdict(ACCEPTED, status, skipped_rows=skipped)
        if status in FAILED_STATES:
            errors = found.get("errors") or []
            detail = "; ".join(
                str(e.get("description") or e.get("code")) for e in errors if isinstance(e, dict)
            )
            return AdobeVerdict(FAILED, status, detail or "the batch failed")
        if status in PENDING_STATES:
            return AdobeVerdict(PENDING, status)
        return AdobeVerdict(UNKNOWN, status)
