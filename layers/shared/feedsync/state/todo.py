"""The index of deliveries with work: ``todo/<key>`` in the state bucket, so a daily run finds
what to do by listing a prefix that holds only the deliveries with work - never by reading the
marker of every delivery kept (19,200 with hourly feeds kept 400 days).

Written when a delivery closes (the parse step, after its record), when Adobe fails a file of
it (reconciliation), when an operator asks to send visitors again (``feedsync retry``); removed
when a run finishes the delivery's content. The marker names the delivery record it was written
for (``closed_at``): the run removes it only if that is still the record it finished, and reads
the record again after removing it, putting the marker back when a re-delivery closed in
between (S3 reads after writes are consistent, so no re-delivery is ever dropped).
"""

from __future__ import annotations

from feedsync.state.layout import StateLayout
from feedsync.storage import ObjectStore, get_json, put_json

INDEXED = "todo/.indexed"  # written once the index has been built from the markers


def mark(state: ObjectStore, key: str, closed_at: str | None, why: str) -> None:
    """``closed_at``: the delivery record the work is for (None: whatever record is current)."""
    put_json(state, StateLayout.todo(key), {"closed_at": closed_at, "why": why})


def done(state: ObjectStore, key: str, closed_at: str | None) -> None:
    """The run finished the record closed at ``closed_at`` (None: whatever record is current):
    unindex it, unless the delivery changed since (a re-delivery's marker, or its record, says
    so)."""
    record = get_json(state, StateLayout.record(key)) or {}
    closed_at = closed_at if closed_at is not None else record.get("closed_at")
    marker = get_json(state, StateLayout.todo(key))
    if marker is not None and marker.get("closed_at") not in (closed_at, None):
        return  # a newer record is waiting
    state.delete(StateLayout.todo(key))
    record = get_json(state, StateLayout.record(key)) or {}
    if record.get("closed_at") and record.get("closed_at") != closed_at:
        mark(state, key, str(record["closed_at"]), "re-delivered during the run")


def keys(state: ObjectStore) -> list[str]:
    """The deliveries with work (listing ``todo/`` alone)."""
    return [k[len(StateLayout.todo()) :] for k in state.list(StateLayout.todo())
            if k != INDEXED]  # fmt: skip


def indexed(state: ObjectStore) -> bool:
    return state.exists(INDEXED)


def built(state: ObjectStore) -> None:
    put_json(state, INDEXED, {"built": True})
