"""The last look at Adobe's side (``feeds/health.json``): what the status page and each
delivery's report show, without asking Adobe again."""

from __future__ import annotations

from typing import Any

from feedsync.storage import ObjectStore, get_json, put_json

SNAPSHOT = "feeds/health.json"


def write_snapshot(state: ObjectStore, look: dict[str, Any]) -> None:
    put_json(state, SNAPSHOT, look)


def snapshot(state: ObjectStore) -> dict[str, Any] | None:
    return get_json(state, SNAPSHOT)


def period_of(
    look: dict[str, Any] | None, rsid: str, day: str, hour: str | None
) -> dict[str, Any] | None:
    """The row for one delivery (its report shows Adobe's side of it)."""
    suite = ((look or {}).get("suites") or {}).get(rsid) or {}
    for row in suite.get("rows", []):
        if row.get("day") == day and row.get("hour") == hour:
            return dict(row)
    return None
