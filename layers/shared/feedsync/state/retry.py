"""An operator's ``feedsync retry DELIVERY``: send again the visitors Adobe gave up on (once
the cause is fixed) and, on request, the rows that were refused (a mapping or a destination
rule fixed since).

Given-up visitors are found from the delivery's failed files and their ledger entries;
refused rows from the per-batch refusal lists in S3. Each one's entry moves to ``retry``
(conditional on the entry the operator's command read), and the ids are written as a requeue
list the delivery's next run sends in re-send batches, with the current CRM record. The
delivery is opened again (its enriched marker removed). Under the delivery's lock: a run in
progress is never raced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from feedsync.daily.send import read_refused, read_visitors
from feedsync.errors import BusyError, FeedsyncError
from feedsync.parse.results import escape_id
from feedsync.state import ledger as moves
from feedsync.state import tally, todo
from feedsync.state.layout import StateLayout
from feedsync.state.ledger import LedgerEntry, VisitorState
from feedsync.state.ports import Ledger, RunState
from feedsync.state.records import DeliveryRecord, FileRecord, FileState
from feedsync.storage import ObjectStore, get_json

REFUSED_SUFFIX = ".refused.jsonl"


@dataclass
class Requeued:
    given_up: int
    rejected: int
    requeue_key: str

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))


def _given_up(runs: RunState, state: ObjectStore, ledger: Ledger, key: str, rsid: str) -> set[str]:
    ids: set[str] = set()
    for record in runs.files(key):
        if record.state is not FileState.FAILED:
            continue
        visitors = read_visitors(state, record.visitors_key)
        entries = ledger.entries(rsid, record.destination, visitors)
        wanted = [
            moves.requeue(v, e, "sent again on an operator's request (feedsync retry)")
            for v, e in entries.items()
            if e.state is VisitorState.GIVEN_UP and e.claim == record.claim
        ]
        moved = ledger.move(rsid, record.destination, wanted) if wanted else set()
        if moved:  # the file's count follows the ledger: its given-up await a re-send again
            _count_requeued(runs, key, record, len(moved))
        ids |= moved
    return ids


def _count_requeued(runs: RunState, key: str, record: FileRecord, moved: int) -> None:
    for _ in range(3):
        # the file is open again: its next run re-sends these (and, resolving it, takes them
        # off the tally's awaiting_resend: released is what awaits now)
        again = replace(record, given_up=max(0, record.given_up - moved), released=moved,
                        resolved=False, version=record.version + 1)  # fmt: skip
        if runs.save_file(key, again, tally.requeued(record, moved)):
            return
        fresh = runs.file(key, record.id)
        if fresh is None:
            return
        record = fresh


def _refused(state: ObjectStore, ledger: Ledger, key: str, rsid: str) -> set[str]:
    ids: set[str] = set()
    for name in state.list(StateLayout.refused_prefix(key)):
        if not name.endswith(REFUSED_SUFFIX):
            continue
        destination = name.removesuffix(REFUSED_SUFFIX).rsplit(".", 1)[-1]
        visitors = sorted({r.visitor for r in read_refused(state, name)})
        entries = ledger.entries(rsid, destination, visitors)
        wanted = [
            moves.requeue(v, e, "looked up again on an operator's request (feedsync retry)")
            for v, e in entries.items()
            if _refusal(e, key)
        ]
        if wanted:
            ledger.move(rsid, destination, wanted)
        # a refusal the ledger did not keep (a mirror or a file: misses are free to repeat)
        # or one just moved: either way the visitor has work again
        ids.update(v for v in visitors if v not in entries or _refusal(entries[v], key))
    return ids


def _not_ingested(runs: RunState, state: ObjectStore, ledger: Ledger, key: str,
                  rsid: str) -> set[str]:  # fmt: skip
    """Visitors Adobe named as not ingested in files it otherwise took (partial ingestion)."""
    ids: set[str] = set()
    for record in runs.files(key):
        if record.state is not FileState.ACCEPTED or not record.not_ingested:
            continue
        visitors = read_visitors(state, record.visitors_key)
        entries = ledger.entries(rsid, record.destination, visitors)
        wanted = [
            moves.requeue(v, e, "sent again on an operator's request (feedsync retry)")
            for v, e in entries.items()
            if e.state is VisitorState.REJECTED and e.file == record.file
        ]
        moved = ledger.move(rsid, record.destination, wanted) if wanted else set()
        if moved:
            _count_reingested(runs, key, record, len(moved))
        ids |= moved
    return ids


def _count_reingested(runs: RunState, key: str, record: FileRecord, moved: int) -> None:
    """Not-ingested visitors sent again: no longer counted as not ingested."""
    for _ in range(3):
        again = replace(record, not_ingested=max(0, record.not_ingested - moved),
                        requeued=record.requeued + moved, version=record.version + 1)  # fmt: skip
        # their new file counts them as sent: this one no longer does
        change = {"not_ingested": -moved, "visitors_sent": -moved}
        if runs.save_file(key, again, [(tally.tally(record.destination), change)]):
            return
        fresh = runs.file(key, record.id)
        if fresh is None:
            return
        record = fresh


def _refusal(entry: LedgerEntry, key: str) -> bool:
    return entry.state is VisitorState.REJECTED and entry.delivery == key


def requeue(
    state: ObjectStore,
    runs: RunState,
    ledger: Ledger,
    key: str,
    owner: str,
    given_up: bool = True,
    rejected: bool = False,
    now: dt.datetime | None = None,
) -> Requeued:
    data = get_json(state, StateLayout.record(key))
    if data is None:
        raise FeedsyncError(f"{key}: no delivery record (see `feedsync status` for the keys)")
    record = DeliveryRecord.from_json(data)
    if not runs.acquire(key, owner, 120.0):
        holder = runs.holder(key)
        who = f" ({holder.owner})" if holder else ""
        raise BusyError(f"{key}: a daily run is working on this delivery{who}; "
                            "run feedsync retry again once it is done")  # fmt: skip
    try:
        ids = _given_up(runs, state, ledger, key, record.rsid) if given_up else set()
        refused = set()
        if rejected:
            refused = _refused(state, ledger, key, record.rsid)
            refused |= _not_ingested(runs, state, ledger, key, record.rsid)
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%f")
        target = StateLayout.requeue(key, stamp)
        everyone = sorted(ids | refused)
        if everyone:
            body = "".join(escape_id(v) + "\n" for v in everyone).encode("utf-8")
            state.put(target, body, "text/plain")
            state.delete(StateLayout.enriched(key))
            todo.mark(state, key, None, "feedsync retry")  # the next daily run picks it up
        return Requeued(len(ids), len(refused - ids), target if everyone else "")
    finally:
        runs.release(key, owner)
