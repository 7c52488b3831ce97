"""An operator's ``feedsync forget DELIVERY``: start a delivery over - remove what feedsync
wrote about it, so a typo'd parse is parsed again, or a delivery that will never be fixed stops
being reported.

Removed: the delivery record, the per-file parse results and visitor streams, the enriched
and todo markers, the reports, and the walks. Kept: the ledger (each visitor's state is a fact
about the visitor, not the delivery: nobody sent is sent again, and a visitor given up stays
given up - ``feedsync retry`` is the remedy for those), what was sent (each batch's plan, each
file's record and Adobe's verdict, the tallies: the proof that a claim's files reached Adobe,
so the walk that starts over leaves those visitors alone and the report keeps counting them)
and ``uploads/``. A delivery a run is working on is left alone (the lock), and so is one with a
batch in flight (a run must finish it first: its claims may be half sent) unless forced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from feedsync.errors import BusyError
from feedsync.state.layout import RESULTS, StateLayout
from feedsync.state.ports import RunState
from feedsync.storage import ObjectStore


@dataclass
class Forgotten:
    objects: list[str]
    run_items: int

    def to_json(self) -> dict[str, object]:
        return {"objects": self.objects, "run_items": self.run_items}


def what_to_forget(state: ObjectStore, key: str) -> list[str]:
    keys = [
        StateLayout.record(key),
        StateLayout.enriched(key),
        StateLayout.todo(key),
        StateLayout.report(key),
        StateLayout.report(key, ".html"),
    ]
    found = [k for k in keys if state.exists(k)]
    return found + sorted(state.list(f"{RESULTS}{key}/"))


def forget(
    state: ObjectStore, runs: RunState | None, key: str, owner: str = "", force: bool = False
) -> Forgotten:
    if runs is None:
        objects = what_to_forget(state, key)
        for name in objects:
            state.delete(name)
        return Forgotten(objects, 0)
    owner = owner or f"forget-{time.time_ns()}"
    if not runs.acquire(key, owner, 120.0):
        holder = runs.holder(key)
        who = f" ({holder.owner})" if holder else ""
        raise BusyError(f"{key}: a daily run is working on this delivery{who}; "
                            "forget it once the run is done")  # fmt: skip
    try:
        flying = runs.in_flight(key)
        if flying and not force:
            waiting = sum(bool(b.get("waiting")) for b in flying)
            raise BusyError(
                f"{key}: {len(flying)} batch(es) in flight ({waiting} waiting for Adobe's answer "
                "on an upload): let the daily run finish them first, or add --force"
            )
        objects = what_to_forget(state, key)
        for name in objects:
            state.delete(name)
        return Forgotten(objects, runs.forget(key, keep=KEEP))
    finally:
        runs.release(key, owner)


# run-state items a forget keeps: what was sent and what Adobe said of it
KEEP = ("plan#", "file#", "count#")
