"""Which deliveries a run works on: those not yet enriched (or re-delivered with new content),
oldest day first; or exactly the delivery or day a backfill names."""

from __future__ import annotations

import hashlib

from feedsync.errors import FeedsyncError
from feedsync.settings import RunRequest
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


def _changed(state: ObjectStore, key: str) -> bool:
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
    """Delivery keys this request covers, oldest day first; by default those not yet enriched."""
    keys = StateLayout.keys_of_records(state.list(DELIVERIES))
    if request.delivery:
        wanted = StateLayout.normalise_key(request.delivery)
        if wanted not in keys:
            raise FeedsyncError(
                f"delivery {wanted!r}: no delivery record under deliveries/ in the state bucket"
            )
        return [wanted]
    if request.date:
        day = request.date.isoformat()
        return [k for k in keys if _day_of(k).startswith(day)]
    done = {k[len(ENRICHED) :] for k in state.list(ENRICHED)}
    pending = [k for k in keys if k not in done or _changed(state, k)]
    return sorted(pending, key=lambda k: (_day_of(k), k))
