"""Run checkpoints and the run lock on StateTable.

Items under ``pk=run#<run>`` (run = delivery key @ content generation):
``sk=batch#NNNNN`` (a finished batch and its figures), ``sk=upload#NNNNN#<destination>`` (the
files of a batch sent to a destination, or being sent), ``sk=verdict#<destination>#<file>``
(Adobe's verdict on a sent file) and ``sk=lock`` (who runs the delivery, until when, last
heartbeat). Lock calls go through the low-level client, which is safe to share with the
heartbeat thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from feedsync.state.records import LockHolder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

RETENTION = 400 * 86_400


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoRunState:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._client = table.meta.client
        self._clock = clock

    def _put(self, run: str, sk: str, record: dict[str, Any]) -> None:
        now = int(self._clock())
        self.table.put_item(
            Item={
                "pk": f"run#{run}",
                "sk": sk,
                "record": _encode(record),
                "expires_at": now + RETENTION,
            }
        )

    def _query(self, run: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"run#{run}") & Key("sk").begins_with(prefix),
            "ConsistentRead": True,
        }
        while True:
            page = self.table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def batches(self, run: str) -> dict[int, dict[str, Any]]:
        return {
            int(str(item["sk"]).split("#")[1]): json.loads(str(item["record"]))
            for item in self._query(run, "batch#")
        }

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None:
        self._put(run, f"batch#{index:05d}", record)

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None:
        item = self.table.get_item(
            Key={"pk": f"run#{run}", "sk": f"upload#{index:05d}#{destination}"}, ConsistentRead=True
        ).get("Item")
        return None if item is None else dict(json.loads(str(item["record"])))

    def save_upload(self, run: str, index: int, destination: str, record: dict[str, Any]) -> None:
        self._put(run, f"upload#{index:05d}#{destination}", record)

    def verdicts(self, run: str) -> list[dict[str, Any]]:
        return [json.loads(str(item["record"])) for item in self._query(run, "verdict#")]

    def save_verdict(self, run: str, name: str, record: dict[str, Any]) -> None:
        self._put(run, f"verdict#{name}", record)

    # -- the lock -----------------------------------------------------------------------
    # Through the resource's client (thread-safe, shared with the heartbeat thread); it still
    # serialises plain Python values.
    def acquire(self, run: str, owner: str, seconds: float, force: bool = False) -> bool:
        now = self._clock()
        item = {
            "pk": f"run#{run}",
            "sk": "lock",
            "owner": owner,
            "until": Decimal(f"{now + seconds:.3f}"),
            "renewed_at": Decimal(f"{now:.3f}"),
            "expires_at": int(now + seconds) + 86_400,
        }
        if force:
            self._client.put_item(TableName=self.table.name, Item=item)  # type: ignore[arg-type]
            return True
        try:
            self._client.put_item(
                TableName=self.table.name,
                Item=item,  # type: ignore[arg-type]
                ConditionExpression="attribute_not_exists(pk) OR #u < :now OR #o = :me",
                ExpressionAttributeNames={"#u": "until", "#o": "owner"},
                ExpressionAttributeValues={":now": Decimal(f"{now:.3f}"), ":me": owner},
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def renew(self, run: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        try:
            self._client.update_item(
                TableName=self.table.name,
                Key={"pk": f"run#{run}", "sk": "lock"},
                UpdateExpression="SET #u = :until, renewed_at = :now",
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#u": "until", "#o": "owner"},
                ExpressionAttributeValues={
                    ":until": Decimal(f"{now + seconds:.3f}"),
                    ":now": Decimal(f"{now:.3f}"),
                    ":me": owner,
                },
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def holder(self, run: str) -> LockHolder | None:
        item: Any = self._client.get_item(
            TableName=self.table.name,
            Key={"pk": f"run#{run}", "sk": "lock"},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        until = float(item["until"])
        return LockHolder(str(item["owner"]), until, float(item.get("renewed_at", until)))

    def release(self, run: str, owner: str) -> None:
        try:
            self._client.delete_item(
                TableName=self.table.name,
                Key={"pk": f"run#{run}", "sk": "lock"},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": owner},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
