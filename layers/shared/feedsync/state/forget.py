"""An operator's ``feedsync forget DELIVERY``: remove what feedsync wrote about one delivery, so
a typo'd parse or a delivery that will never be fixed stops being reported.

Removed: the delivery record, the per-file parse results and visitor streams, the enriched
marker, the reports, and the run state (walks, plans, file records, lock). Kept: the ledger (each
visitor's state is a fact about the visitor, not the delivery: nobody sent is sent again) and
``uploads/`` (copies of files Adobe holds).
"""

from __future__ import annotations

from dataclasses import dataclass

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
        StateLayout.report(key),
        StateLayout.report(key, ".html"),
    ]
    found = [k for k in keys if state.exists(k)]
    return found + sorted(state.list(f"{RESULTS}{key}/"))


def forget(state: ObjectStore, runs: RunState | None, key: str) -> Forgotten:
    objects = what_to_forget(state, key)
    for name in objects:
        state.delete(name)
    return Forgotten(objects, runs.forget(key) if runs is not None else 0)
