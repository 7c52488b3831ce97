"""moto's DynamoDB, made about as cheap as DynamoDB (dev only: tests, demo, local up).

moto 5 snapshots every table a transaction touches with ``copy.deepcopy`` - once per item of
the transaction - so its rollback costs O(table x items) per call. The ledger writes through
transactions of up to 100 items; with that copy a test's run slows ~10x as the table grows.

This replacement keeps DynamoDB's documented semantics (AWS DynamoDB Developer Guide,
"TransactWriteItems": all-or-nothing; every condition is checked before anything is written;
one operation per item; cancellation reasons in request order) by checking every condition
first and writing only when all hold. Put, Delete and ConditionCheck - what feedsync sends; a
transaction with an Update goes to moto's own method.
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False
Reason = tuple[Any, Any, Any]  # (code, message, old item) as moto's exception takes them


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


_parsed: dict[str, Any] = {}  # moto parses a condition per item; a batch repeats the same few
# moto's server answers on many threads: the check-then-read of the cache is one step (a clear
# by one thread between another's check and read raised KeyError at 1 M visitors)
_parsed_lock = threading.Lock()


def _condition(op: dict[str, Any]) -> Any:
    from moto.dynamodb.comparisons import get_filter_expression

    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    marker = repr((op["ConditionExpression"], sorted((names or {}).items()),
                   sorted((values or {}).items(), key=lambda kv: kv[0])))  # fmt: skip
    with _parsed_lock:
        parsed = _parsed.get(marker)
    if parsed is None:
        parsed = get_filter_expression(op["ConditionExpression"], names, values)
        with _parsed_lock:
            if len(_parsed) > 10_000:
                _parsed.clear()
            _parsed[marker] = parsed
    return parsed


def _check(backend: Any, op: dict[str, Any], key: dict[str, Any]) -> Reason:
    current = backend.get_item(op["TableName"], key)
    condition = op.get("ConditionExpression")
    if condition is None:
        return (None, None, None)
    if _condition(op).expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _reasons(backend: Any, items: list[dict[str, Any]]) -> list[Reason]:
    from moto.dynamodb.exceptions import MultipleTransactionsException

    seen: set[tuple[str, str]] = set()
    reasons = []
    for item in items:
        op_type, op = next(iter(item.items()))
        key = _key(backend, op_type, op)
        marker = (op["TableName"], str(sorted(key.items())))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        reasons.append(_check(backend, op, key))
    return reasons


def _write(backend: Any, items: list[dict[str, Any]]) -> None:
    for item in items:
        op_type, op = next(iter(item.items()))
        if op_type == "Put":
            backend.put_item(op["TableName"], op["Item"])
        elif op_type == "Delete":
            backend.delete_item(op["TableName"], op["Key"])


class _Parsed:
    """A condition moto's request validation parsed before (the same one, item after item):
    the parser's findings, and its parse result without parsing again."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self._result = parser.parse()

    def parse(self) -> Any:
        return self._result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _cache_validation() -> None:
    """moto's TransactWriteItems handler parses every item's condition to validate it; a
    transaction of 100 items repeats the same few conditions (only the key differs)."""
    from moto.dynamodb import responses

    create = responses.create_condition_expression_parser
    seen: dict[str, _Parsed] = {}

    def cached(expression: Any, names: Any, values: Any) -> Any:
        marker = repr((expression, sorted((names or {}).items()), sorted((values or {}).items())))
        if marker not in seen:
            seen[marker] = _Parsed(create(expression, names, values))
            if len(seen) > 10_000:
                seen.clear()
        return seen[marker]

    responses.create_condition_expression_parser = cached  # type: ignore[assignment]


# Item operations whose results are already in DynamoDB's wire shape ({"S": ...} values)
_WIRE_SHAPED = frozenset({"GetItem", "BatchGetItem", "Query", "PutItem", "DeleteItem",
                          "UpdateItem", "BatchWriteItem", "TransactWriteItems"})  # fmt: skip


def _fast_results() -> None:
    """moto serialises every response through its generic, model-walking serializer (~2 ms an
    item); DynamoDB's JSON protocol is the result itself, so the item operations' results are
    written with json.dumps (anything else still goes through moto's serializer)."""
    import json

    from moto.dynamodb.responses import DynamoResult

    generic = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in _WIRE_SHAPED:
            try:
                body = json.dumps(self.result)
            except (TypeError, ValueError):
                return generic(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return generic(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def _bucket_eventbridge() -> None:
    """moto keeps a bucket's EventBridgeConfiguration but leaves it out of
    GetBucketNotificationConfiguration; S3 returns it (S3 API reference,
    GetBucketNotificationConfiguration: "EventBridgeConfiguration")."""
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        status, headers, body = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is not None and config.event_bridge is not None:
            text = body.decode() if isinstance(body, bytes) else str(body)
            end = "</NotificationConfiguration>"
            if end in text:
                text = text.replace(end, "<EventBridgeConfiguration/>" + end)
            else:  # moto answered "no configuration": an empty one
                text = ('<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                        "<EventBridgeConfiguration/></NotificationConfiguration>")  # fmt: skip
            body = text.encode() if isinstance(body, bytes) else text
        return status, headers, body

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


def install() -> None:
    global _installed
    if _installed:
        return
    _cache_validation()
    _fast_results()
    _bucket_eventbridge()
    from moto.dynamodb.exceptions import TooManyTransactionsException, TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if any(next(iter(i)) == "Update" for i in transact_items):
            original(self, transact_items)
            return
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        reasons = _reasons(self, transact_items)
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        _write(self, transact_items)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _installed = True
