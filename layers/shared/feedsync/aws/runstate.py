"""Run state and the run lock on StateTable, per run key (a delivery key, or a dry run's).

Items under ``pk=delivery#<run>``: ``sk=walk#<generation>`` (the generation's position in its
pending stream, saved with a version check), ``sk=inflight#<walk>#NNNNN`` (a batch started and
not finished, of any generation; removed when its plans are sent),
``sk=plan#<walk>#NNNNN#<destination>`` (a batch's files for a destination, and which of them
Adobe took), ``sk=file#<destination>#<file>`` (every file sent: its job and Adobe's verdict,
saved with a version check) and ``sk=lock`` (who runs the delivery, until when, last
heartbeat). Lock calls go through the low-level client, which is safe to share with the
heartbeat thread. Every item is bounded (tests/unit/test_bounds.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from feedsync.state.ports import Counters
from feedsync.state.records import FileRecord, LockHolder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

RETENTION = 400 * 86_400


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _pk(run: str) -> str:
    return f"delivery#{run}"


def _cancelled_by_condition(exc: ClientError) -> bool:
    """A transaction cancelled because the file record's version check failed."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
    return "ConditionalCheckFailed" in reasons


def _numbers(item: dict[str, Any]) -> dict[str, int]:
    return {
        str(k): int(v)
        for k, v in item.items()
        if k not in ("pk", "sk", "expires_at") and isinstance(v, int | Decimal)
    }


class DynamoRunState:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._client = table.meta.client
        self._clock = clock

    def _item(self, run: str, sk: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "pk": _pk(run),
            "sk": sk,
            "record": _encode(record),
            "expires_at": int(self._clock()) + RETENTION,
        }

    def _get(self, run: str, sk: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": _pk(run), "sk": sk}, ConsistentRead=True).get("Item")
        return None if item is None else dict(json.loads(str(item["record"])))

    def _query(self, run: str, prefix: str, limit: int | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        condition: Any = Key("pk").eq(_pk(run))
        if prefix:
            condition = condition & Key("sk").begins_with(prefix)
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ConsistentRead": True}
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            page = self.table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- walk, plans, files -------------------------------------------------------------
    def walk(self, run: str, generation: str) -> dict[str, Any] | None:
        return self._get(run, f"walk#{generation}")

    def save_walk(self, run: str, generation: str, record: dict[str, Any]) -> bool:
        version = int(record["version"])
        item = {**self._item(run, f"walk#{generation}", record), "version": version}
        if version <= 1:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "version = :before", {":before": version - 1}
        try:
            if values is None:
                self.table.put_item(Item=item, ConditionExpression=condition)
            else:
                self.table.put_item(
                    Item=item, ConditionExpression=condition, ExpressionAttributeValues=values
                )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def in_flight(self, run: str) -> list[dict[str, Any]]:
        return [json.loads(str(item["record"])) for item in self._query(run, "inflight#")]

    def in_flight_one(self, run: str, batch_id: str) -> dict[str, Any] | None:
        return self._get(run, f"inflight#{batch_id}")

    def save_in_flight(self, run: str, batch_id: str, record: dict[str, Any]) -> None:
        self.table.put_item(Item=self._item(run, f"inflight#{batch_id}", record))

    def drop_in_flight(self, run: str, batch_id: str) -> None:
        self.table.delete_item(Key={"pk": _pk(run), "sk": f"inflight#{batch_id}"})

    def plan(self, run: str, walk: str, batch: int, destination: str) -> dict[str, Any] | None:
        return self._get(run, f"plan#{walk}#{batch:05d}#{destination}")

    def save_plan(
        self, run: str, walk: str, batch: int, destination: str, record: dict[str, Any]
    ) -> None:
        sk = f"plan#{walk}#{batch:05d}#{destination}"
        self.table.put_item(Item=self._item(run, sk, record))

    def files(self, run: str, limit: int | None = None) -> list[FileRecord]:
        return [
            FileRecord.from_json(json.loads(str(item["record"])))
            for item in self._query(run, "file#", limit)
        ]

    def file(self, run: str, file_id: str) -> FileRecord | None:
        data = self._get(run, f"file#{file_id}")
        return None if data is None else FileRecord.from_json(data)

    def save_file(self, run: str, record: FileRecord, counters: Counters = ()) -> bool:
        item = {**self._item(run, f"file#{record.id}", record.to_json()),
                "version": record.version}  # fmt: skip
        put: dict[str, Any] = {"TableName": self.table.name, "Item": item}
        if record.version <= 1:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put.update(ConditionExpression="#v = :before",
                       ExpressionAttributeNames={"#v": "version"},
                       ExpressionAttributeValues={":before": record.version - 1})  # fmt: skip
        items = [{"Put": put}] + [{"Update": self._add(run, n, c)} for n, c in counters if c]
        try:
            if len(items) == 1:
                self._client.put_item(**put)
            else:  # the file and its counters, all or nothing
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if _condition_failed(exc) or _cancelled_by_condition(exc):
                return False
            raise
        return True

    # -- counters (tallies the views read instead of every ledger entry) ------------------
    def _add(self, run: str, name: str, amounts: dict[str, int]) -> dict[str, Any]:
        names = {f"#f{n}": field for n, field in enumerate(amounts)}
        values: dict[str, Any] = {f":v{n}": int(v) for n, v in enumerate(amounts.values())}
        values[":exp"] = int(self._clock()) + RETENTION
        adds = ", ".join(f"#f{n} :v{n}" for n in range(len(amounts)))
        return {
            "TableName": self.table.name,
            "Key": {"pk": _pk(run), "sk": f"count#{name}"},
            "UpdateExpression": f"ADD {adds} SET expires_at = :exp",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def counters(self, run: str, prefix: str) -> dict[str, dict[str, int]]:
        return {
            str(item["sk"])[len("count#") :]: _numbers(item)
            for item in self._query(run, f"count#{prefix}")
        }

    def counter(self, run: str, name: str) -> dict[str, int]:
        item = self.table.get_item(Key={"pk": _pk(run), "sk": f"count#{name}"}).get("Item")
        return _numbers(item or {})

    def add_counters(self, run: str, counters: Counters) -> None:
        for name, amounts in counters:
            if amounts:
                self._client.update_item(**self._add(run, name, amounts))

    def set_counter(self, run: str, name: str, values: dict[str, int]) -> None:
        item: dict[str, Any] = {"pk": _pk(run), "sk": f"count#{name}",
                                **{k: int(v) for k, v in values.items()},
                                "expires_at": int(self._clock()) + RETENTION}  # fmt: skip
        self.table.put_item(Item=item)

    def forget(self, run: str, keep: Sequence[str] = ()) -> int:
        items = [i for i in self._query(run, "") if not str(i["sk"]).startswith(tuple(keep))]
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        return len(items)

    # -- the lock -----------------------------------------------------------------------
    # Through the resource's client (thread-safe, shared with the heartbeat thread); it still
    # serialises plain Python values.
    def acquire(self, run: str, owner: str, seconds: float, force: bool = False) -> bool:
        now = self._clock()
        item = {
            "pk": _pk(run),
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
                Key={"pk": _pk(run), "sk": "lock"},
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
            Key={"pk": _pk(run), "sk": "lock"},
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
                Key={"pk": _pk(run), "sk": "lock"},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": owner},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
