"""Reconciliation: read Adobe's verdict on every file sent and not yet final, and move its
visitors in the ledger.

Accepted (a Data Sources job ``success``, a Target batch ``complete``, a BDIA file
``COMPLETE``): the file's visitors become ``accepted``. Failed (``failure``, ``stuck``,
``REJECTED``/``ERROR``): each becomes ``retry`` - the next run of its delivery sends it again,
whichever generation of the day is current - or ``given_up`` after ``max_attempts`` sends
(counted, alarmed, in the report with Adobe's reason). Still processing after ``stuck_after``:
the file is reported stuck and asked about again next run. A status Adobe's documentation does
not list is an error (alarmed), never a success. Each delivery touched is named in
``touched``, so its report is rebuilt at once.

Two invocations never reconcile at once (the ``reconcile`` lock; the second one says so and
goes on with its deliveries), and a file record is written only over the version it read: a
writer that lost a race reads the record again instead of overwriting it. What became of a
file's visitors (released, given up) is the ledger's to say; the file record keeps only
Adobe's verdict. A file of a destination no longer configured is still followed when its
sender can be built from the settings left (``followers``), and reported otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from feedsync import metrics
from feedsync.daily import seen as recent
from feedsync.daily.destinations import Destination
from feedsync.daily.destinations.base import ACCEPTED, FAILED, PENDING, STUCK, AdobeVerdict
from feedsync.daily.lock import RunLock
from feedsync.daily.send import read_visitors
from feedsync.errors import ApiError
from feedsync.state import ledger as moves
from feedsync.state import tally, todo
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import VisitorState
from feedsync.state.ports import Ledger, Metric, RunState, UploadLog
from feedsync.state.records import FileRecord, FileState
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)


LOCK = "reconcile"


@dataclass
class ReconcileSummary:
    skipped: str = ""  # another invocation was reconciling
    unfollowed: int = 0  # files of destinations that can no longer be asked (reported)
    checked: int = 0
    accepted: int = 0
    failed: int = 0
    pending: int = 0
    stuck: int = 0
    released: int = 0  # visitors to be sent again
    given_up: int = 0  # visitors Adobe failed max_attempts times
    skipped_rows: int = 0  # rows Adobe took a file with but did not ingest
    not_ingested: int = 0  # of them, visitors Adobe named (moved to rejected with its reason)
    unknown_which: int = 0  # of them, rows Adobe did not say which (reported, alarmed)
    errors: list[str] = field(default_factory=list)
    verdicts: list[dict[str, object]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # delivery keys whose state moved

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            k: v for k, v in vars(self).items() if k not in ("verdicts", "touched")
        }
        out["verdicts"] = list(self.verdicts)
        out["deliveries"] = sorted(self.touched)
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
    owner: str = "reconcile"
    lease: float = 60.0
    # a sender for a destination no longer configured (None: its settings are gone too)
    follower: Callable[[str], Destination | None] = lambda name: None

    def run(self) -> ReconcileSummary:
        lock = RunLock(self.runs, LOCK, self.owner, self.lease, self.lease / 3, self.clock)
        if not lock.acquire():
            return ReconcileSummary(skipped=f"another invocation is reconciling: "
                                            f"{lock.describe()}")  # fmt: skip
        lock.start_heartbeat()
        try:
            return self._run()
        finally:
            lock.release()

    def _sender(self, name: str, senders: dict[str, Destination]) -> Destination | None:
        if name not in senders:
            senders[name] = self.follower(name)  # type: ignore[assignment]
        return senders[name]

    def _run(self) -> ReconcileSummary:
        summary = ReconcileSummary()
        senders: dict[str, Destination] = {d.name: d for d in self.destinations if not d.dry_run}
        for queued in self.uploads.open_uploads():
            destination = self._sender(queued.destination, senders)
            if destination is None:
                summary.unfollowed += 1
                summary.touched.add(queued.delivery)
                continue  # no longer configured and cannot be built: reported with the delivery
            upload = self.runs.file(queued.delivery, queued.id) or queued
            if upload.final:
                self.uploads.close(upload)  # settled by an earlier run after the queue copy
                continue
            summary.checked += 1
            try:
                answer = destination.sender.verdict(upload.rsid, upload.job)
            except ApiError as exc:
                summary.errors.append(f"{upload.destination} {upload.file}: {exc}")
                continue
            self._settle(upload, answer, summary)
        for name, value in (
            (metrics.UPLOADS_ACCEPTED, summary.accepted),
            (metrics.UPLOADS_FAILED, summary.failed),
            (metrics.UPLOADS_STUCK, summary.stuck),
            (metrics.VISITORS_RELEASED, summary.released),
            (metrics.VISITORS_GIVEN_UP, summary.given_up),
            (metrics.ROWS_SKIPPED_BY_ADOBE, summary.skipped_rows),
            (metrics.ROWS_NOT_INGESTED, summary.skipped_rows),
            (metrics.VERDICT_ERRORS, len(summary.errors)),
        ):
            self.metric(name, value)
        return summary

    def _now(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(timespec="seconds")

    def _settle(self, upload: FileRecord, answer: AdobeVerdict, summary: ReconcileSummary) -> None:
        seen = replace(upload, adobe_status=answer.status, detail=answer.detail)
        if answer.outcome == ACCEPTED:
            summary.accepted += 1
            summary.skipped_rows += answer.skipped_rows
            final = self._accept(seen, answer, summary)
        elif answer.outcome == FAILED:
            summary.failed += 1
            final = self._fail(seen, answer, summary)
        elif answer.outcome in (PENDING, STUCK):
            # stuck: Adobe says so itself (Platform ``stalled``); else after AdobeStuckHours
            stuck = answer.outcome == STUCK or self.clock() - upload.sent_at > self.stuck_after
            summary.stuck += stuck
            summary.pending += not stuck
            if not stuck or upload.state is FileState.STUCK:
                return  # nothing new to say
            final = replace(seen, state=FileState.STUCK, verdict_at=self._now())
        else:
            summary.errors.append(
                f"{upload.destination} {upload.file}: Adobe answered the status "
                f"{answer.status!r}, which its documentation does not list: treated as an error"
            )
            return
        summary.verdicts.append({"file": final.file, "destination": final.destination,
                                 "status": answer.status, "outcome": str(final.state)})  # fmt: skip
        final = replace(final, version=upload.version + 1)
        if not self.runs.save_file(final.delivery, final, tally.verdict(upload, final)):
            # another writer (a run marking it resolved) saved in between: apply the verdict to
            # what it wrote, never over it
            fresh = self.runs.file(final.delivery, final.id)
            again = _verdict_on(fresh, final) if fresh is not None else None
            if (
                again is None
                or fresh is None
                or not self.runs.save_file(final.delivery, again, tally.verdict(fresh, again))
            ):
                summary.errors.append(f"{final.destination} {final.file}: the file record "
                                      "changed twice while its verdict was saved; asked again "
                                      "next run")  # fmt: skip
                return
        if final.state is FileState.ACCEPTED:  # its visitors are settled: later days skip them
            now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            recent.record_accepted(self.state, final.rsid, final.destination, final.visitors_key,
                                 now)  # fmt: skip
        if final.final:
            self.uploads.close(final)
        summary.touched.add(final.delivery)

    def _move(
        self,
        upload: FileRecord,
        accepted: bool,
        reason: str,
        not_ingested: dict[str, str] | None = None,
    ) -> Counter[VisitorState]:
        """Move the visitors a verdict concerns: all of a failed file's (retry / given up),
        only those Adobe named in an accepted one (the others' entries stay as claimed: the
        file record says they were accepted - no write per visitor)."""
        visitors = (
            sorted(not_ingested or ()) if accepted
            else read_visitors(self.state, upload.visitors_key)
        )  # fmt: skip
        if not visitors:
            return Counter()
        entries = self.ledger.entries(upload.rsid, upload.destination, visitors)
        planned = moves.verdict_moves(entries, visitors, upload.claim, upload.file, accepted,
                                      self.max_attempts, reason, not_ingested)  # fmt: skip
        moved = self.ledger.move(upload.rsid, upload.destination, planned)
        counts = Counter(m.entry.state for m in planned if m.visitor in moved)
        # a verdict settled before a crash moved some already: count them too (exact on re-run)
        counts.update(
            e.state
            for e in entries.values()
            if e.claim == upload.claim and e.file == upload.file and e.state not in moves.IN_FLIGHT
        )
        return counts

    def _accept(
        self, upload: FileRecord, answer: AdobeVerdict, summary: ReconcileSummary
    ) -> FileRecord:
        named = {r.visitor: f"{upload.destination}: not ingested by Adobe: {r.reason}"
                 for r in answer.not_ingested}  # fmt: skip
        counts = self._move(upload, True, "", named)
        summary.not_ingested += counts[VisitorState.REJECTED]
        summary.unknown_which += answer.unknown_which
        if answer.skipped_rows:
            logger.error(
                "Adobe took %s %s only in part: %d rows not ingested (%d named, %d unknown which)",
                upload.destination, upload.file, answer.skipped_rows, len(named),
                answer.unknown_which,
            )  # fmt: skip
        return replace(
            upload,
            state=FileState.ACCEPTED,
            verdict_at=self._now(),
            skipped_rows=answer.skipped_rows,
            not_ingested=len(named),
        )

    def _fail(
        self, upload: FileRecord, answer: AdobeVerdict, summary: ReconcileSummary
    ) -> FileRecord:
        reason = f"Adobe: {answer.status}" + (f" ({answer.detail})" if answer.detail else "")
        counts = self._move(upload, False, reason)
        released, given_up = counts[VisitorState.RETRY], counts[VisitorState.GIVEN_UP]
        summary.released += released
        summary.given_up += given_up
        logger.error(
            "Adobe failed %s %s (%s): %d visitors to send again, %d given up",
            upload.destination, upload.file, answer.status, released, given_up,
        )  # fmt: skip
        # the delivery has work again (its next run re-sends them), or must say who was given up
        self.state.delete(StateLayout.enriched(upload.delivery))
        todo.mark(self.state, upload.delivery, None, f"Adobe failed {upload.file}")
        return replace(upload, state=FileState.FAILED, verdict_at=self._now(),
                       released=released, given_up=given_up)  # fmt: skip


def _verdict_on(fresh: FileRecord, verdict: FileRecord) -> FileRecord:
    """The verdict's fields over a record another writer saved meanwhile."""
    return replace(
        fresh,
        state=verdict.state,
        adobe_status=verdict.adobe_status,
        detail=verdict.detail,
        verdict_at=verdict.verdict_at,
        skipped_rows=verdict.skipped_rows,
        not_ingested=verdict.not_ingested,
        released=verdict.released,
        given_up=verdict.given_up,
        version=fresh.version + 1,
    )
