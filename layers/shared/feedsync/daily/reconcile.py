"""Reconciliation: read Adobe's verdict on every file sent and not yet final.

``success`` / ``complete`` / a BDIA file Adobe has: the upload is final. A failure (a Data
Sources job ``failure``, a Target batch ``stuck``, a BDIA file ``REJECTED`` or unknown to the key
lookup) releases the file's visitors: the ledger marks them for a re-send to that destination
(at most ``max_attempts`` sends a visitor, then they are given up and counted), the batch
checkpoint gets the destination in its ``retry`` list, and the delivery is opened again so the
next run sends them in a new attempt. A job still processing after ``stuck_after`` is reported
stuck (and stays in the queue).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from feedsync import metrics
from feedsync.daily.batch import Checkpoint
from feedsync.daily.destinations import Destination
from feedsync.daily.destinations.base import ACCEPTED, FAILED, AdobeVerdict
from feedsync.daily.send import FAILED as PLAN_FAILED
from feedsync.errors import ApiError
from feedsync.parse.results import unescape_id
from feedsync.state.layout import StateLayout
from feedsync.state.ports import Ledger, Metric, RunState, UploadLog
from feedsync.state.records import LedgerEntry, LedgerStatus, OpenUpload, Verdict
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)


@dataclass
class ReconcileSummary:
    checked: int = 0
    accepted: int = 0
    failed: int = 0
    pending: int = 0
    stuck: int = 0
    released: int = 0  # visitors to be sent again
    given_up: int = 0  # visitors Adobe failed max_attempts times
    errors: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in vars(self).items() if k != "verdicts"}
        out["verdicts"] = [v.to_json() for v in self.verdicts if v.outcome != "pending"]
        return out


@dataclass
class Reconciler:
    state: ObjectStore
    ledger: Ledger
    runs: RunState
    uploads: UploadLog
    destinations: list[Destination]
    metric: Metric
    max_attempts: int = 3
    stuck_after: float = 24 * 3600.0
    clock: Callable[[], float] = time.time

    def run(self) -> ReconcileSummary:
        summary = ReconcileSummary()
        senders = {d.name: d for d in self.destinations if not d.dry_run}
        for upload in self.uploads.open_uploads():
            destination = senders.get(upload.destination)
            if destination is None:
                continue  # no longer configured (or a dry run): left for a run that has it
            summary.checked += 1
            try:
                answer = destination.sender.verdict(upload.rsid, upload.job)
            except ApiError as exc:
                summary.errors.append(f"{upload.destination} {upload.job.file}: {exc}")
                continue
            self._settle(upload, answer, summary)
        for name, value in (
            (metrics.UPLOADS_ACCEPTED, summary.accepted),
            (metrics.UPLOADS_FAILED, summary.failed),
            (metrics.UPLOADS_STUCK, summary.stuck),
            (metrics.VISITORS_RELEASED, summary.released),
            (metrics.VISITORS_GIVEN_UP, summary.given_up),
        ):
            self.metric(name, value)
        return summary

    def _verdict(self, upload: OpenUpload, answer: AdobeVerdict, outcome: str) -> Verdict:
        job = upload.job
        return Verdict(
            destination=upload.destination,
            file=job.file,
            status=answer.status,
            outcome=outcome,
            visitors=upload.visitors,
            detail=answer.detail,
            job=str(job.job_id or job.idempotency_key or job.batch_status or ""),
            at=dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(timespec="seconds"),
        )

    def _settle(self, upload: OpenUpload, answer: AdobeVerdict, summary: ReconcileSummary) -> None:
        if answer.outcome == ACCEPTED:
            summary.accepted += 1
            outcome = ACCEPTED
        elif answer.outcome == FAILED:
            summary.failed += 1
            outcome = FAILED
            released, given_up = self._release(upload)
            summary.released += released
            summary.given_up += given_up
            logger.error(
                "Adobe failed %s %s (%s): %d visitors to send again, %d given up",
                upload.destination, upload.job.file, answer.status, released, given_up,
            )  # fmt: skip
        else:
            stuck = self.clock() - upload.sent_at > self.stuck_after
            summary.stuck += stuck
            summary.pending += not stuck
            outcome = "stuck" if stuck else "pending"
        verdict = self._verdict(upload, answer, outcome)
        summary.verdicts.append(verdict)
        if outcome != "pending":
            self.runs.save_verdict(upload.run, upload.id, verdict.to_json())
        if outcome in (ACCEPTED, FAILED):
            self.uploads.close(upload)

    def _visitors(self, upload: OpenUpload) -> list[str]:
        raw = self.state.get(upload.visitors_key) or b""
        return [unescape_id(line) for line in raw.decode("utf-8").splitlines()]

    def _release(self, upload: OpenUpload) -> tuple[int, int]:
        visitors = self._visitors(upload)
        entries = self.ledger.entries(upload.rsid, visitors)
        updated: list[tuple[str, LedgerEntry]] = []
        given_up = 0
        for visitor in visitors:
            entry = entries.get(visitor) or LedgerEntry(LedgerStatus.UPLOADED, upload.delivery)
            if entry.attempts >= self.max_attempts:
                given_up += 1
                updated.append((visitor, LedgerEntry(LedgerStatus.FAILED, upload.delivery,
                                                     attempts=entry.attempts)))  # fmt: skip
            else:
                retry = entry.retry | {upload.destination}
                updated.append((visitor, LedgerEntry(LedgerStatus.RETRY, upload.delivery, retry,
                                                     entry.attempts)))  # fmt: skip
        self.ledger.record(upload.rsid, updated)
        released = len(visitors) - given_up
        if released:
            self._reopen(upload)
        return released, given_up

    def _reopen(self, upload: OpenUpload) -> None:
        """Mark the plan failed and the batch for a retry; open the delivery again."""
        plan = self.runs.upload(upload.run, upload.batch, upload.destination)
        if plan is not None and int(plan.get("attempt", 1)) == upload.attempt:
            self.runs.save_upload(
                upload.run, upload.batch, upload.destination, {**plan, "state": PLAN_FAILED}
            )
        done = self.runs.batches(upload.run).get(upload.batch)
        if done is not None:
            checkpoint = Checkpoint.from_json(done)
            if upload.destination not in checkpoint.retry:
                checkpoint.retry.append(upload.destination)
            self.runs.save_batch(upload.run, upload.batch, checkpoint.to_json())
        self.state.delete(StateLayout.enriched(upload.delivery))
