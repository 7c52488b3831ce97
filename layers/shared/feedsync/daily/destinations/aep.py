"""Experience Platform: the matched visitors' CRM attributes as XDM records keyed by the ECID,
one Platform batch per file, followed in the Catalog to Adobe's verdict (for Customer Journey
Analytics, which reads the dataset).

Each file is one batch: created with a deterministic ``externalId`` (delivery, generation,
batch, part), its single JSON Lines file uploaded, then completed. A lost answer to the create
is looked up by that ``externalId`` (``find``): a batch found still ``loading`` gets its file
and its completion; one already completed is taken as it is - a batch is never created twice
nor completed twice. Files are cut under the 256 MB upload limit (one file per batch, well
under the documented files-per-batch limit).

Verdicts: ``VERDICTS`` below, one row per ``batchStatus`` value catalog.yaml lists, each with
its source. A batch that ends ``success``/``active`` with ``metrics.failedRecordCount`` > 0 was
ingested in part: the failed records are read back through the Data Access API
(``retrieveFailedBatch``) and each visitor Platform refused is named with Platform's error code
and message (rejected, counted, alarmed - never accepted); what cannot be read back is reported
"not ingested, unknown which". Ids that cannot be ECIDs (38 digits) are refused before sending.
"""

from __future__ import annotations

import json

from feedsync.adobe.aep import MAX_FILE_BYTES, AepClient
from feedsync.adobe.bdia import is_ecid
from feedsync.adobe.session import AdobeSession
from feedsync.daily.aep_mapping import AepMapping, TypeProblem
from feedsync.daily.destinations.base import (
    ACCEPTED,
    FAILED,
    PENDING,
    STUCK,
    UNKNOWN,
    AdobeVerdict,
    Batch,
    BuiltFiles,
    UploadFile,
)
from feedsync.errors import ApiError, ConfigError
from feedsync.state.records import JobRef, Rejected

NAME = "aep"
CATALOG = "experience-platform-apis static/swagger-specs/catalog.yaml, batchStatus enum"
GUIDE = "experience-platform ingestion/batch/troubleshooting.md (batch states)"
# Every batchStatus value catalog.yaml lists, read deliberately; anything else is UNKNOWN.
VERDICTS: dict[str, tuple[str, str]] = {
    "success": (ACCEPTED, CATALOG),
    "active": (ACCEPTED, GUIDE + ': "Active and Success are used interchangeably"'),
    "processing": (PENDING, CATALOG),
    "staging": (PENDING, GUIDE + ': "Staging" - the batch is being processed'),
    "staged": (PENDING, CATALOG),
    "queued": (PENDING, CATALOG),
    "loading": (PENDING, CATALOG + " (created, files arriving)"),
    "loaded": (PENDING, CATALOG + " (files in, not yet completed/processed)"),
    "retrying": (PENDING, CATALOG + " (Platform retries it itself)"),
    "inactive": (PENDING, GUIDE + ': "not active until it transitions to its final state"'),
    "stalled": (STUCK, CATALOG + " (Platform says it is stalled: reported stuck at once)"),
    "failed": (FAILED, CATALOG),
    "failure": (FAILED, CATALOG),
    "aborted": (FAILED, GUIDE + " (terminal, nothing ingested: the visitors are sent again)"),
    "abandoned": (FAILED, GUIDE + " (terminal, nothing ingested: the visitors are sent again)"),
    "deleted": (FAILED, CATALOG + " (the batch's data was removed: the visitors are sent again)"),
}


def _aep(batch: Batch) -> AepMapping:
    if batch.mapping.aep is None:
        raise ConfigError(
            f"{batch.mapping.source}: DESTINATIONS has aep but the mapping has no 'aep' section "
            "(dataset_id, sandbox, fields: see README 'Customer Journey Analytics')"
        )
    if not batch.mapping.aep.dataset_id:
        raise ConfigError(
            f"{batch.mapping.source}: aep.dataset_id is not set: `feedsync aep setup` creates "
            "the dataset and prints the id to add to the mapping's 'aep' section"
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
            if not is_ecid(row.visitor):  # the identity is the ECID: Platform would refuse it
                out.rejected.append(
                    Rejected(row.visitor, "not an Experience Cloud ID (38 digits) for aep")
                )
                continue
            try:
                record = aep.record(row.visitor, row.platform)
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
        client = self.client(sandbox)
        found = client.batch(batch_id)
        status = str(found.get("status", "unknown")).lower()
        outcome = VERDICTS.get(status, (UNKNOWN, ""))[0]
        if outcome == ACCEPTED:
            failed = _failed_count(found)
            if not failed:
                return AdobeVerdict(ACCEPTED, status)
            named = _not_ingested(client, batch_id)
            return AdobeVerdict(ACCEPTED, status, f"{failed} records not ingested",
                                skipped_rows=max(failed, len(named)),
                                not_ingested=tuple(named))  # fmt: skip
        if outcome == FAILED:
            return AdobeVerdict(FAILED, status, _errors(found) or f"the batch ended {status}")
        return AdobeVerdict(outcome, status, _errors(found))


def _failed_count(batch: dict[str, object]) -> int:
    """The partial-ingestion guide documents ``metrics.failedRecordCount``; older answers carry
    it at the root."""
    metrics = batch.get("metrics")
    value = metrics.get("failedRecordCount") if isinstance(metrics, dict) else None
    if value is None:
        value = batch.get("failedRecordCount")
    try:
        return int(str(value or 0))
    except ValueError:
        return 0


def _errors(batch: dict[str, object]) -> str:
    errors = batch.get("errors") or []
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        " ".join(str(e[k]) for k in ("code", "description") if e.get(k))
        for e in errors
        if isinstance(e, dict)
    )


def _not_ingested(client: AepClient, batch_id: str) -> list[Rejected]:
    """The visitors of a partly ingested batch Platform refused, with its error codes and
    messages (Data Access ``retrieveFailedBatch``; each failed record keeps its ``identityMap``
    and carries ``_errors``). An unreadable answer names nobody (reported "unknown which")."""
    out: list[Rejected] = []
    try:
        for record in client.failed_records(batch_id):
            ecids = ((record.get("identityMap") or {}).get("ECID")) or []
            visitor = str(ecids[0].get("id")) if ecids and isinstance(ecids[0], dict) else ""
            if not visitor:
                continue
            errors = record.get("_errors") or []
            why = "; ".join(
                f"{e.get('code', '')} {e.get('message', '')}".strip()
                for e in errors
                if isinstance(e, dict)
            )
            out.append(Rejected(visitor, f"Platform: {why or 'failed record (no reason given)'}"))
    except ApiError:
        return []
    return out
