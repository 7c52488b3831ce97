"""The reconciliation queue on StateTable: files sent to Adobe awaiting Adobe's verdict.

Items: ``pk=uploads#open``, ``sk=<delivery key>#<destination>#<file>``, ``record`` (the file
record as JSON, a copy of the one under the delivery). The queue is an index: the file record and
the ledger hold the truth. It stays small (the files of the last days), so one partition serves it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from feedsync.state.records import FileRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

PK = "uploads#open"
RETENTION = 400 * 86_400


def _sk(upload: FileRecord) -> str:
    return f"{upload.delivery}#{upload.id}"


class DynamoUploadLog:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._clock = clock

    def add(self, upload: FileRecord) -> None:
        self.table.put_item(
            Item={
                "pk": PK,
                "sk": _sk(upload),
                "record": json.dumps(upload.to_json(), sort_keys=True),
                "expires_at": int(self._clock()) + RETENTION,
            }
        )

    def open_uploads(self) -> list[FileRecord]:
        out: list[FileRecord] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(PK),
            "ConsistentRead": True,
        }
        while True:
            page = self.table.query(**kwargs)
            out.extend(FileRecord.from_json(json.loads(str(i["record"]))) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(out, key=lambda u: (u.sent_at, u.id))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close(self, upload: FileRecord) -> None:
        self.table.delete_item(Key={"pk": PK, "sk": _sk(upload)})
