"""The Marketo rate limit held across invocations: one StateTable item, optimistic locking."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from feedsync.crm.ratelimit import Limits, LimitState, decide

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class DynamoRateLimiter:
    """The limiter state in one StateTable item: ``pk=ratelimit#<name>``, ``sk=state``."""

    def __init__(
        self,
        table: Table,
        name: str,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.key = {"pk": f"ratelimit#{name}", "sk": "state"}
        self.limits = limits
        self._clock = clock
        self._sleep = sleep

    def _load(self) -> tuple[LimitState, int]:
        item: Any = self.table.get_item(Key=self.key, ConsistentRead=True).get("Item")
        if not item:
            return LimitState(), 0
        stamps = [float(s) for s in item.get("stamps", [])]
        leases = {k: float(v) for k, v in item.get("leases", {}).items()}
        return LimitState(stamps, leases), int(item.get("version", 0))

    def _save(self, state: LimitState, version: int) -> bool:
        try:
            self.table.put_item(
                Item={
                    **self.key,
                    "stamps": [Decimal(f"{s:.3f}") for s in state.stamps],
                    "leases": {k: Decimal(f"{v:.3f}") for k, v in state.leases.items()},
                    "version": version + 1,
                    "expires_at": int(self._clock()) + 86_400,
                },
                ConditionExpression="attribute_not_exists(pk) OR version = :v",
                ExpressionAttributeValues={":v": version},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # another invocation changed it first: read again
            raise
        return True

    @contextmanager
    def slot(self) -> Iterator[None]:
        lease = uuid.uuid4().hex
        while True:
            state, version = self._load()
            taken, wait = decide(state, self._clock(), self.limits, lease)
            if taken:
                if self._save(state, version):
                    break
                continue
            self._sleep(wait)
        try:
            yield
        finally:
            self._release(lease)

    def _release(self, lease: str) -> None:
        self.table.update_item(
            Key=self.key,
            UpdateExpression="REMOVE leases.#l SET version = version + :one",
            ExpressionAttributeNames={"#l": lease},
            ExpressionAttributeValues={":one": 1},
        )
