"""The visitor ledger: who was already enriched (or looked up in vain), per report suite.

Items in StateTable: ``pk=ledger#<rsid>#<visitor>``, ``sk=visitor``, ``status``
(``uploaded`` | ``not_found`` | ``rejected``), ``delivery``, ``expires_at`` (DynamoDB TTL).
Uploaded visitors are remembered ``ttl_days``; misses only ``miss_ttl_days``, so a visitor who
becomes known to the CRM later is looked up again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

DAY = 86_400
STATUSES = ("uploaded", "not_found", "rejected")
_BATCH_GET = 100


class Ledger(Protocol):
    def known(self, rsid: str, ids: Sequence[str]) -> set[str]: ...

    def record(self, rsid: str, entries: Iterable[tuple[str, str]], delivery: str) -> int: ...


def _key(rsid: str, visitor: str) -> dict[str, str]:
    return {"pk": f"ledger#{rsid}#{visitor}", "sk": "visitor"}


class DynamoLedger:
    def __init__(
        self,
        table: Any,
        ttl_days: int,
        miss_ttl_days: int,
        clock: Any = time.time,
        sleep: Any = time.sleep,
    ) -> None:
        self.table = table
        self.ttl = {
            "uploaded": ttl_days * DAY,
            "not_found": miss_ttl_days * DAY,
            "rejected": miss_ttl_days * DAY,
        }
        self._clock = clock
        self._sleep = sleep

    def known(self, rsid: str, ids: Sequence[str]) -> set[str]:
        client = self.table.meta.client
        now = self._clock()
        found: set[str] = set()
        for start in range(0, len(ids), _BATCH_GET):
            request: dict[str, Any] = {
                self.table.name: {
                    "Keys": [_key(rsid, v) for v in ids[start : start + _BATCH_GET]],
                    "ProjectionExpression": "pk, expires_at",
                }
            }
            attempt = 0
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table.name, []):
                    # TTL deletion lags by up to days: an expired item counts as absent.
                    if float(item.get("expires_at", 0)) > now:
                        found.add(str(item["pk"]).split("#", 2)[2])
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    self._sleep(min(5.0, 0.05 * 2**attempt))
        return found

    def record(self, rsid: str, entries: Iterable[tuple[str, str]], delivery: str) -> int:
        now = int(self._clock())
        count = 0
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for visitor, status in entries:
                batch.put_item(
                    Item={
                        **_key(rsid, visitor),
                        "status": status,
                        "delivery": delivery,
                        "recorded_at": now,
                        "expires_at": now + self.ttl[status],
                    }
                )
                count += 1
        return count


class MemoryLedger:
    """The same rules in a dict: for local runs without DynamoDB, tests and benchmarks."""

    def __init__(self, ttl_days: int = 90, miss_ttl_days: int = 7, clock: Any = time.time) -> None:
        self.ttl = {
            "uploaded": ttl_days * DAY,
            "not_found": miss_ttl_days * DAY,
            "rejected": miss_ttl_days * DAY,
        }
        self.items: dict[tuple[str, str], tuple[str, float]] = {}
        self._clock = clock

    def known(self, rsid: str, ids: Sequence[str]) -> set[str]:
        now = self._clock()
        return {v for v in ids if self.items.get((rsid, v), ("", 0.0))[1] > now}

    def record(self, rsid: str, entries: Iterable[tuple[str, str]], delivery: str) -> int:
        now = self._clock()
        count = 0
        for visitor, status in entries:
            self.items[(rsid, visitor)] = (status, now + self.ttl[status])
            count += 1
        return count
