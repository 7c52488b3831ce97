"""Run checkpoints: which batches of a delivery are done, which uploads went out, who runs it.

Items in StateTable under ``pk=run#<delivery key>``:
``sk=batch#NNNNN`` (a finished batch and its figures), ``sk=upload#NNNNN#<destination>`` (an
upload that Adobe accepted), ``sk=lock`` (the invocation working on the delivery, with a lease).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Protocol

RETENTION = 400 * 86_400


class RunState(Protocol):
    def batches(self, run: str) -> dict[int, dict[str, Any]]: ...

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None: ...

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None: ...

    def save_upload(
        self, run: str, index: int, destination: str, record: dict[str, Any]
    ) -> None: ...

    def acquire(self, run: str, owner: str, seconds: float) -> bool: ...

    def release(self, run: str, owner: str) -> None: ...


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


class DynamoRunState:
    def __init__(self, table: Any, clock: Any = time.time) -> None:
        self.table = table
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

    def batches(self, run: str) -> dict[int, dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        out: dict[int, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"run#{run}") & Key("sk").begins_with("batch#"),
            "ConsistentRead": True,
        }
        while True:
            page = self.table.query(**kwargs)
            for item in page.get("Items", []):
                out[int(str(item["sk"]).split("#")[1])] = json.loads(str(item["record"]))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None:
        self._put(run, f"batch#{index:05d}", record)

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None:
        item = self.table.get_item(
            Key={"pk": f"run#{run}", "sk": f"upload#{index:05d}#{destination}"}, ConsistentRead=True
        ).get("Item")
        return None if item is None else dict(json.loads(str(item["record"])))

    def save_upload(self, run: str, index: int, destination: str, record: dict[str, Any]) -> None:
        self._put(run, f"upload#{index:05d}#{destination}", record)

    def acquire(self, run: str, owner: str, seconds: float) -> bool:
        from botocore.exceptions import ClientError

        now = self._clock()
        try:
            self.table.put_item(
                Item={
                    "pk": f"run#{run}",
                    "sk": "lock",
                    "owner": owner,
                    "until": Decimal(f"{now + seconds:.3f}"),
                    "expires_at": int(now + seconds) + 86_400,
                },
                ConditionExpression="attribute_not_exists(pk) OR #u < :now OR #o = :me",
                ExpressionAttributeNames={"#u": "until", "#o": "owner"},
                ExpressionAttributeValues={":now": Decimal(f"{now:.3f}"), ":me": owner},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, run: str, owner: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.table.delete_item(
                Key={"pk": f"run#{run}", "sk": "lock"},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": owner},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


class MemoryRunState:
    def __init__(self, clock: Any = time.time) -> None:
        self.items: dict[tuple[str, str], Any] = {}
        self._clock = clock

    def batches(self, run: str) -> dict[int, dict[str, Any]]:
        return {
            int(sk.split("#")[1]): json.loads(v)
            for (r, sk), v in self.items.items()
            if r == run and sk.startswith("batch#")
        }

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None:
        self.items[(run, f"batch#{index:05d}")] = _encode(record)

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None:
        value = self.items.get((run, f"upload#{index:05d}#{destination}"))
        return None if value is None else dict(json.loads(value))

    def save_upload(self, run: str, index: int, destination: str, record: dict[str, Any]) -> None:
        self.items[(run, f"upload#{index:05d}#{destination}")] = _encode(record)

    def acquire(self, run: str, owner: str, seconds: float) -> bool:
        held = self.items.get((run, "lock"))
        now = self._clock()
        if held and held[0] != owner and held[1] > now:
            return False
        self.items[(run, "lock")] = (owner, now + seconds)
        return True

    def release(self, run: str, owner: str) -> None:
        held = self.items.get((run, "lock"))
        if held and held[0] == owner:
            del self.items[(run, "lock")]
