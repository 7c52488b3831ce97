"""The visitor ledger on StateTable.

Items: ``pk=ledger#<rsid>#<visitor>``, ``sk=visitor``, ``status`` (``uploaded`` | ``not_found``
| ``rejected`` | ``retry`` | ``failed``), ``delivery``, ``retry`` (destinations to send again),
``attempts``, ``expires_at`` (DynamoDB TTL). Uploaded, retried and failed visitors are
remembered ``ttl_days``; misses and rejections only ``miss_ttl_days``, so a visitor who becomes
known to the CRM (or whose CRM record is fixed) is looked up again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from feedsync.state.records import LedgerEntry, LedgerStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

DAY = 86_400
_BATCH_GET = 100


def _key(rsid: str, visitor: str) -> dict[str, str]:
    return {"pk": f"ledger#{rsid}#{visitor}", "sk": "visitor"}


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        status=LedgerStatus(str(item.get("status", "uploaded"))),
        delivery=str(item.get("delivery", "")),
        retry=frozenset(str(d) for d in item.get("retry", []) or []),
        attempts=int(item.get("attempts", 1)),
    )


class DynamoLedger:
    def __init__(
        self,
        table: Table,
        ttl_days: int,
        miss_ttl_days: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        long, short = ttl_days * DAY, miss_ttl_days * DAY
        self.ttl = {
            LedgerStatus.UPLOADED: long,
            LedgerStatus.RETRY: long,
            LedgerStatus.FAILED: long,
            LedgerStatus.NOT_FOUND: short,
            LedgerStatus.REJECTED: short,
        }
        self._clock = clock
        self._sleep = sleep

    def _get_many(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        client = self.table.meta.client
        request: Any = {self.table.name: {"Keys": keys}}
        items: list[dict[str, Any]] = []
        attempt = 0
        while request:
            answer = client.batch_get_item(RequestItems=request)
            items.extend(answer.get("Responses", {}).get(self.table.name, []))
            request = answer.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                self._sleep(min(5.0, 0.05 * 2**attempt))
        return items

    def entries(self, rsid: str, ids: Sequence[str]) -> dict[str, LedgerEntry]:
        now = self._clock()
        found: dict[str, LedgerEntry] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH_GET):
            keys = [_key(rsid, v) for v in unique[start : start + _BATCH_GET]]
            for item in self._get_many(keys):
                # TTL deletion lags by up to days: an expired item counts as absent.
                if float(item.get("expires_at", 0)) > now:
                    found[str(item["pk"]).split("#", 2)[2]] = _entry(item)
        return found

    def known(self, rsid: str, ids: Sequence[str]) -> set[str]:
        """Visitors with nothing left to do (live entries not awaiting a re-send)."""
        return {v for v, e in self.entries(rsid, ids).items() if e.settled}

    def record(
        self, rsid: str, entries: Iterable[tuple[str, LedgerEntry | str]], delivery: str = ""
    ) -> int:
        now = int(self._clock())
        count = 0
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for visitor, value in entries:
                entry = (
                    value
                    if isinstance(value, LedgerEntry)
                    else LedgerEntry(LedgerStatus(value), delivery)
                )
                item: dict[str, Any] = {
                    **_key(rsid, visitor),
                    "status": str(entry.status),
                    "delivery": entry.delivery or delivery,
                    "attempts": entry.attempts,
                    "recorded_at": now,
                    "expires_at": now + self.ttl[entry.status],
                }
                if entry.retry:
                    item["retry"] = sorted(entry.retry)
                batch.put_item(Item=item)
                count += 1
        return count
