"""Object keys from S3 notifications, delivered directly or through EventBridge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus


def object_keys(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (bucket, key) for every ObjectCreated record of the event.

    S3 notification keys are URL-encoded (a space arrives as '+'); EventBridge keys are not.
    """
    if "Records" in event:
        for record in event["Records"]:
            if not record.get("eventName", "ObjectCreated").startswith("ObjectCreated"):
                continue
            s3 = record["s3"]
            yield s3["bucket"]["name"], unquote_plus(s3["object"]["key"])
    elif event.get("source") == "aws.s3" and "detail" in event:
        detail = event["detail"]
        yield detail["bucket"]["name"], detail["object"]["key"]
    else:
        raise ValueError("not an S3 ObjectCreated notification (no Records, no aws.s3 detail)")


def feed_objects(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) to parse: an S3 notification, an EventBridge event, or a backfill item
    (BackfillStateMachine) - the latter only when its phase and day range want the object."""
    if "backfill" in event:
        from feedsync.parse.backfill import BackfillItem

        item = BackfillItem.from_event(event)
        return [(item.bucket, item.key)] if item.wanted() else []
    return list(object_keys(event))
