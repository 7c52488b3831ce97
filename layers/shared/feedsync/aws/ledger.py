"""The visitor ledger on StateTable (state/ledger.py has the states and the moves).

Items: ``pk=ledger#<rsid>#<visitor>``, ``sk=dest#<destination>``, ``state``, ``delivery``,
``claim``, ``file``, ``attempts``, ``reason``, ``recorded_at``, ``expires_at`` (DynamoDB TTL:
``ttl_days`` for delivery states, ``miss_ttl_days`` for not_found and rejected).

Moves are written with TransactWriteItems, up to 100 a call, each with its condition. When a
condition fails, DynamoDB cancels the whole call and says which item failed: that visitor is
left alone (another invocation moved it) and the rest are written again. An expired entry
counts as absent everywhere, as TTL deletion lags by up to days.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from feedsync.state.ledger import SHORT_LIVED as SHORT
from feedsync.state.ledger import LedgerEntry, Move, VisitorState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

DAY = 86_400
_BATCH_GET = 100
_TRANSACTION = 100  # TransactWriteItems' limit
_CONFLICT_RETRIES = 8


def _key(rsid: str, visitor: str, destination: str) -> dict[str, Any]:
    return {"pk": f"ledger#{rsid}#{visitor}", "sk": f"dest#{destination}"}


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        state=VisitorState(str(item["state"])),
        delivery=str(item.get("delivery", "")),
        claim=str(item.get("claim", "")),
        file=str(item.get("file", "")),
        attempts=int(item.get("attempts", 0)),
        reason=str(item.get("reason", "")),
    )


def _visitor(item: dict[str, Any]) -> str:
    return str(item["pk"]).split("#", 2)[2]


class DynamoLedger:
    def __init__(
        self,
        table: Table,
        ttl_days: int,
        miss_ttl_days: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table.name
        # the resource's client: it (de)serialises plain Python values, as the table does
        self.client = table.meta.client
        self.ttl_long, self.ttl_short = ttl_days * DAY, miss_ttl_days * DAY
        self._clock = clock
        self._sleep = sleep

    # -- reads --------------------------------------------------------------------------
    def _get_many(self, keys: list[dict[str, Any]], consistent: bool) -> list[dict[str, Any]]:
        request: Any = {self.table_name: {"Keys": keys, "ConsistentRead": consistent}}
        items: list[dict[str, Any]] = []
        attempt = 0
        while request:
            answer = self.client.batch_get_item(RequestItems=request)
            items.extend(answer.get("Responses", {}).get(self.table_name, []))
            request = answer.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                self._sleep(min(5.0, 0.05 * 2**attempt))
        return items

    def entries(
        self, rsid: str, destination: str, ids: Sequence[str], consistent: bool = True
    ) -> dict[str, LedgerEntry]:
        now = self._clock()
        found: dict[str, LedgerEntry] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH_GET):
            keys = [_key(rsid, v, destination) for v in unique[start : start + _BATCH_GET]]
            for item in self._get_many(keys, consistent):
                if float(item.get("expires_at", 0)) > now:
                    found[_visitor(item)] = _entry(item)
        return found

    # -- moves --------------------------------------------------------------------------
    def move(self, rsid: str, destination: str, moves: Sequence[Move]) -> set[str]:
        unique = list({m.visitor: m for m in moves}.values())  # one write per item and call
        moved: set[str] = set()
        for start in range(0, len(unique), _TRANSACTION):
            moved |= self._transact(rsid, destination, unique[start : start + _TRANSACTION])
        return moved

    def _transact(self, rsid: str, destination: str, moves: list[Move]) -> set[str]:
        conflicts = 0
        while moves:
            now = int(self._clock())
            try:
                items: Any = [self._put(rsid, destination, m, now) for m in moves]
                self.client.transact_write_items(
                    TransactItems=items,
                    ClientRequestToken=uuid.uuid4().hex,
                )
                return {m.visitor for m in moves}
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                failed = "ConditionalCheckFailed"
                moves = [m for m, r in zip(moves, reasons, strict=False) if r != failed]
                continue
            conflicts += 1  # TransactionConflict / throughput: the same items, a moment later
            if conflicts > _CONFLICT_RETRIES:
                raise RuntimeError(f"the ledger stayed busy for {len(moves)} moves: {reasons}")
            self._sleep(min(2.0, 0.05 * 2**conflicts))
        return set()

    def _put(self, rsid: str, destination: str, move: Move, now: int) -> dict[str, Any]:
        entry = move.entry
        ttl = self.ttl_short if entry.state in SHORT else self.ttl_long
        item: dict[str, Any] = {
            **_key(rsid, move.visitor, destination),
            "state": str(entry.state),
            "attempts": entry.attempts,
            "recorded_at": now,
            "expires_at": now + ttl,
        }
        for name in ("delivery", "claim", "file", "reason"):
            value = getattr(entry, name)
            if value:
                item[name] = value
        condition, names, values = _condition(move, now)
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def _condition(move: Move, now: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The Move's rule (``Move.allows``) as a DynamoDB condition: an expired entry is absent."""
    names = {"#s": "state", "#e": "expires_at"}
    values: dict[str, Any] = {":now": now}

    def one_of(prefix: str, states: frozenset[VisitorState]) -> str:
        marks = []
        for n, state in enumerate(sorted(states)):
            values[f":{prefix}{n}"] = str(state)
            marks.append(f":{prefix}{n}")
        return f"#s IN ({', '.join(marks)})"

    live = []
    if move.from_states:
        live.append(one_of("f", move.from_states))
    if move.own or move.takeover:
        names["#c"] = "claim"
    if move.own:
        values[":own"] = move.own
        own = "#c = :own"
        if move.own_states:
            own += " AND " + one_of("o", move.own_states)
        live.append(f"({own})" if move.own_states else own)
    if move.takeover:
        values[":dead"] = move.takeover
        values[":planned"] = str(VisitorState.PLANNED)
        live.append("(#c = :dead AND #s = :planned)")
    parts = []
    if move.from_absent:
        parts.append("attribute_not_exists(pk) OR #e < :now")
    if live:  # AND binds tighter than OR: parentheses only where DynamoDB needs them
        either = " OR ".join(live)
        parts.append(
            "attribute_exists(pk) AND #e >= :now AND "
            + (f"({either})" if len(live) > 1 else either)
        )
    if not parts:
        raise ValueError(f"a move of {move.visitor} that nothing allows")
    return " OR ".join(parts), names, values
