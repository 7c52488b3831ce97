"""Which deliveries a run works on: those not yet enriched (or re-delivered with new content),
oldest day first; or exactly the delivery or day a backfill names."""

from __future__ import annotations

import hashlib

from feedsync.errors import FeedsyncError
from feedsync.settings import RunRequest
from feedsync.state import todo
from feedsync.state.layout import DELIVERIES, ENRICHED, StateLayout
from feedsync.state.records import DeliveryRecord, Json
from feedsync.storage import ObjectStore, get_json


def generation(record: DeliveryRecord | Json) -> str:
    """Identity of a delivery's content: its data files' streams (named by digest). A
    duplicated manifest event keeps it; Adobe re-delivering different files changes it."""
    if isinstance(record, dict):
        record = DeliveryRecord.from_json(record)
    parts = sorted(f.visitors_key for f in record.files if f.kind == "data")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _day_of(key: str) -> str:
    return key.rsplit("_", 1)[-1]


def changed(state: ObjectStore, key: str) -> bool:
    """The delivery changed since its marker: Adobe re-delivered it with other content, or a
    delivery skipped as failed was closed again."""
    marker = get_json(state, StateLayout.enriched(key)) or {}
    data = get_json(state, StateLayout.record(key))
    if data is None:
        return False
    if marker.get("skipped") and data.get("complete"):
        return True  # skipped as failed, now verified: a re-delivery (closed_at has whole
        # seconds: a resend can close within the second the failed one closed)
    if marker.get("skipped") or not data.get("complete"):
        return bool(data.get("closed_at")) and data.get("closed_at") != marker.get("closed_at")
    done = marker.get("generation")
    return bool(done) and done != generation(DeliveryRecord.from_json(data))


def delivery_keys(state: ObjectStore, request: RunRequest) -> list[str]:
    """Delivery keys this request covers, oldest day first; by default those with work (the
    ``todo/`` index: constant work whatever the number of deliveries kept)."""
    if request.delivery:
        return [find_delivery(state, request.delivery)]
    if request.date:
        day = request.date.isoformat()
        keys = StateLayout.keys_of_records(state.list(DELIVERIES))
        return [k for k in keys if _day_of(k).startswith(day)]
    if not todo.indexed(state):
        _build_index(state)
    keys = [k for k in todo.keys(state) if _has_work(state, k)]
    return sorted(keys, key=lambda k: (_day_of(k), k))


def find_delivery(state: ObjectStore, text: str) -> str:
    """A delivery's key from what a person has: the key (``adobe/rsid/rsid_2026-11-20``),
    ``deliveries/<key>.json``, or the bare delivery id that parse, reports and ``feeds
    resend`` print (``rsid_2026-11-20``), looked up under deliveries/."""
    wanted = StateLayout.normalise_key(text.strip())
    if state.exists(StateLayout.record(wanted)):
        return wanted
    if "/" not in wanted:
        found = [k for k in StateLayout.keys_of_records(state.list(DELIVERIES))
                 if k.rsplit("/", 1)[-1] == wanted]  # fmt: skip
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise FeedsyncError(f"delivery {wanted!r} is in {len(found)} folders: name one of "
                                f"{', '.join(found)}")  # fmt: skip
    raise FeedsyncError(
        f"delivery {wanted!r}: no delivery record under deliveries/ in the state bucket "
        "(`feedsync status` lists the keys)"
    )


def _has_work(state: ObjectStore, key: str) -> bool:
    """An indexed delivery still has work unless its marker says this very content is done
    (a duplicated manifest event re-closes the same content): such an entry is dropped."""
    if not state.exists(StateLayout.enriched(key)) or changed(state, key):
        return True
    todo.done(state, key, None)
    return False


def _build_index(state: ObjectStore) -> None:
    """Once, after an upgrade: the index from the markers (the way deliveries were found
    before it existed)."""
    done = {k[len(ENRICHED) :] for k in state.list(ENRICHED)}
    for key in StateLayout.keys_of_records(state.list(DELIVERIES)):
        if key not in done or changed(state, key):
            record = get_json(state, StateLayout.record(key)) or {}
            todo.mark(state, key, record.get("closed_at") or None, "indexed")
    todo.built(state)
