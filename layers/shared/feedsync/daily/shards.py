"""A delivery too large for one chain of invocations is cut into shards: key ranges of its
sorted pending stream, each walked by a shard of its own - its own walk record, lock, batches
in flight and invocations - side by side, under the shared Adobe and Marketo rate limiters.

The cut points come from the per-file streams' member indexes (the first id of every gzip
member of every data file), so cutting reads no visitor; a delivery whose streams have fewer
members than shards (small, or written before the indexes) is read once to find them.

Who runs the shards: in the stack, the DailyShards state machine (a Distributed Map, one child
per shard with bounded concurrency, each invoking EnrichUploadFunction with ``{"delivery",
"shard"}`` again while the shard answers ``in_progress``, then the delivery once more to finish
it); locally (``feedsync run-daily --shards N``, the tests, the demo) ``LocalShards`` runs them
in this process, one after the other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from feedsync.errors import FeedsyncError
from feedsync.parse.results import pending_visitors
from feedsync.state.records import DeliveryRecord, ShardRange, Status
from feedsync.storage import ObjectStore

logger = logging.getLogger(__name__)


class ShardRunner(Protocol):
    def start(self, key: str, shards: int, run_name: str) -> str:
        """Have every shard of ``key`` walked, then the delivery finished; what was started.
        ``run_name`` names this start (the walk's id and its start count): a second start with
        the same name starts nothing."""
        ...

    def running(self, run_name: str) -> bool:
        """Whether the start named ``run_name`` is still under way (False once it ended,
        whichever way: a shard that failed for good is started anew by the daily run)."""
        ...


def ranges(state: ObjectStore, record: DeliveryRecord, count: int) -> list[ShardRange]:
    """``count`` ranges (after, until] covering the pending stream, about equal in ids."""
    if count <= 1:
        return [(None, None)]
    firsts = sorted({first for f in record.data_files for first, _ in f.visitors_index})
    if len(firsts) >= 4 * count:
        cuts = [firsts[len(firsts) * n // count] for n in range(1, count)]
    else:  # too few members to cut on: read the stream once
        ids = list(pending_visitors(state, record, None))
        cuts = [ids[len(ids) * n // count - 1] for n in range(1, count) if ids]
    cuts = sorted(set(cuts))
    bounds: list[str | None] = [None, *cuts, None]
    return [(bounds[n], bounds[n + 1]) for n in range(len(bounds) - 1)]


def shard_count(pending: int | None, visitors_per_shard: int, forced: int, most: int) -> int:
    """How many shards a delivery gets: ``forced`` (``--shards N``), else one per
    ``visitors_per_shard`` pending visitors (0: never shard), at most ``most``."""
    if forced:
        return max(1, forced)
    if not visitors_per_shard or not pending or pending <= visitors_per_shard:
        return 1
    return min(most, -(-pending // visitors_per_shard))


@dataclass
class LocalShards:
    """The shards in this process, one after the other: each is run again while it answers
    ``in_progress``, then the delivery itself (which finishes the sharded walk)."""

    run_shard: Callable[[str, int], str]  # (delivery key, shard) -> the shard's status
    max_rounds: int = 1_000

    def start(self, key: str, shards: int, run_name: str) -> str:
        for shard in range(shards):
            for _ in range(self.max_rounds):
                status = self.run_shard(key, shard)
                if status != Status.IN_PROGRESS:
                    break
            else:
                raise FeedsyncError(f"{key}: shard {shard} still in progress after "
                                    f"{self.max_rounds} rounds")  # fmt: skip
        return f"{shards} shards run in this process"

    def running(self, run_name: str) -> bool:
        return False  # start() returns only once every shard has stopped


class StepFunctionsShards:
    """The DailyShards state machine (template.yaml), one execution per sharded walk: its name
    is the walk's, so a second start (a retried invocation) finds it and starts nothing."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.arn = state_machine_arn

    def start(self, key: str, shards: int, run_name: str) -> str:
        name = self._name(run_name)
        payload = {"delivery": key, "shards": [{"delivery": key, "shard": n}
                                                for n in range(shards)]}  # fmt: skip
        try:
            answer = self.client.start_execution(
                stateMachineArn=self.arn, name=name, input=json.dumps(payload)
            )
        except self.client.exceptions.ExecutionAlreadyExists:
            return f"execution {name} already started"
        return str(answer.get("executionArn", name))

    def running(self, run_name: str) -> bool:
        arn = self.arn.replace(":stateMachine:", ":execution:", 1) + ":" + self._name(run_name)
        try:
            answer = self.client.describe_execution(executionArn=arn)
        except self.client.exceptions.ExecutionDoesNotExist:
            return False
        return answer.get("status") in ("RUNNING", "PENDING_REDRIVE")

    @staticmethod
    def _name(run_name: str) -> str:
        """An execution name (at most 80 of [A-Za-z0-9-_]) ending in the walk and start."""
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_name)[-80:]
