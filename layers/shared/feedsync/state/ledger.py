"""The ledger: the one place a visitor's delivery state lives, per (report suite, visitor,
destination). Everything else (reports, status, metrics, what the next run does) is derived
from it.

::

    (absent | expired) ──claim──► planned ──Adobe took the file──► sent ──verdict──► accepted
          ▲                          │                               │
          │                          │ the destination's rules       │ verdict: failed
          │                          ▼ refuse the row                ▼
          │                       rejected            retry (attempts < max) ──claim──► planned …
          │                                           given_up (attempts = max)
          └── not_found / rejected expire after LedgerMissTtlDays; the rest after LedgerTtlDays

    lookup: the CRM does not know the visitor ──► not_found;  the mapping refuses the record ──►
    rejected (with the reason)

Every move is conditional (``Move``): it names the states it may start from, and optionally the
batch (``claim``) that must own the entry. Two invocations can never both move a visitor: the
second one's condition fails and it leaves the visitor alone. A batch re-run after a crash owns
its entries (same claim), so repeating it moves nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from feedsync.state.records import clip


class VisitorState(StrEnum):
    PLANNED = "planned"  # in a batch's files (claimed); Adobe has not confirmed taking them
    SENT = "sent"  # Adobe took the file; its verdict is still to come
    ACCEPTED = "accepted"  # Adobe's verdict: success (final)
    RETRY = "retry"  # Adobe failed the file: the next run sends the visitor again
    GIVEN_UP = "given_up"  # Adobe failed it ``max attempts`` times (final, reported, alarmed)
    NOT_FOUND = "not_found"  # the CRM does not know the visitor (looked up again after the TTL)
    REJECTED = "rejected"  # a row rule refused the record (reason kept; again after the TTL)


# entries only the miss TTL keeps (a visitor fixed in the CRM is looked up again soon)
SHORT_LIVED = frozenset({VisitorState.NOT_FOUND, VisitorState.REJECTED})
# nothing more to do for the visitor at this destination, unless the entry is ours
SETTLED = frozenset(
    {
        VisitorState.PLANNED,
        VisitorState.SENT,
        VisitorState.ACCEPTED,
        VisitorState.GIVEN_UP,
        VisitorState.NOT_FOUND,
        VisitorState.REJECTED,
    }
)
# a claim may start here (absent and expired entries too)
CLAIMABLE = frozenset({VisitorState.NOT_FOUND, VisitorState.REJECTED, VisitorState.RETRY})
# a batch re-run after a crash may redo these entries of its own (nothing is in a sent file yet)
REDOABLE = frozenset({VisitorState.PLANNED, VisitorState.NOT_FOUND, VisitorState.REJECTED})
# states a verdict moves from (a file's visitors, owned by the file's batch)
IN_FLIGHT = frozenset({VisitorState.PLANNED, VisitorState.SENT})


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one visitor at one destination."""

    state: VisitorState
    delivery: str = ""  # the delivery key of the last move
    claim: str = ""  # the batch that moved it last: "<delivery key>@<generation>#<batch>"
    file: str = ""  # the file it was sent in (sent, accepted, retry, given_up)
    attempts: int = 0  # sends so far
    reason: str = ""  # why: a rejected row's rule, Adobe's word on a failed file

    @property
    def settled(self) -> bool:
        return self.state in SETTLED

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"state": str(self.state), "attempts": self.attempts}
        for name in ("delivery", "claim", "file", "reason"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class Move:
    """One conditional transition: ``visitor`` becomes ``entry`` if its current entry is absent
    (or expired) and ``from_absent``, or is in ``from_states``, or is owned by ``own`` (a claim)
    in one of ``own_states`` (any state when empty)."""

    visitor: str
    entry: LedgerEntry
    from_states: frozenset[VisitorState] = frozenset()
    from_absent: bool = False
    own: str = ""
    own_states: frozenset[VisitorState] = frozenset()
    # a dead batch's claim (its in-flight record is gone: forgotten, or written before the
    # in-flight records existed): its ``planned`` entries may be claimed
    takeover: str = ""

    def allows(self, current: LedgerEntry | None) -> bool:
        """The same rule as the DynamoDB condition (the fakes and the adapter agree)."""
        if current is None:
            return self.from_absent
        if current.state in self.from_states:
            return True
        if self.own and current.claim == self.own:
            return not self.own_states or current.state in self.own_states
        return bool(
            self.takeover
            and current.claim == self.takeover
            and current.state is VisitorState.PLANNED
        )


def claim(
    visitor: str, current: LedgerEntry | None, delivery: str, batch: str, orphan: bool = False
) -> Move:
    """planned by ``batch``: from absent, a miss, a retry, or ``batch``'s own earlier entry;
    ``orphan``: also from ``current``'s planned entry, whose batch is known to be dead."""
    if current is not None and (current.claim == batch or orphan):
        attempts = current.attempts  # a re-run of ours, or a dead batch's (never sent)
    else:
        attempts = (current.attempts if current is not None else 0) + 1
    planned = LedgerEntry(VisitorState.PLANNED, delivery, batch, attempts=max(1, attempts))
    takeover = current.claim if orphan and current is not None else ""
    return Move(visitor, planned, CLAIMABLE, True, own=batch, own_states=REDOABLE,
                takeover=takeover)  # fmt: skip


def requeue(visitor: str, current: LedgerEntry, note: str) -> Move:
    """An operator's ``feedsync retry``: a given-up (or rejected) visitor becomes ``retry``
    again - a given-up one with its attempts counted afresh, as the cause was fixed. Only from
    the very entry the operator saw (same state, same claim)."""
    attempts = 0 if current.state is VisitorState.GIVEN_UP else current.attempts
    entry = replace(current, state=VisitorState.RETRY, attempts=attempts, reason=clip(note))
    return Move(visitor, entry, own=current.claim, own_states=frozenset({current.state}))


def miss(visitor: str, state: VisitorState, delivery: str, batch: str, reason: str = "") -> Move:
    """not_found or rejected (a miss never displaces a planned, sent or accepted entry)."""
    entry = LedgerEntry(state, delivery, batch, reason=clip(reason))
    return Move(visitor, entry, CLAIMABLE, True, own=batch, own_states=REDOABLE)


def refused_by_destination(visitor: str, delivery: str, batch: str, reason: str) -> Move:
    entry = LedgerEntry(VisitorState.REJECTED, delivery, batch, reason=clip(reason))
    return Move(visitor, entry, own=batch, own_states=frozenset({VisitorState.PLANNED}))


def sent(visitor: str, current: LedgerEntry | None, batch: str, file: str) -> Move:
    base = current if current is not None else LedgerEntry(VisitorState.PLANNED, claim=batch)
    entry = replace(base, state=VisitorState.SENT, claim=batch, file=file)
    return Move(visitor, entry, own=batch, own_states=IN_FLIGHT)


def verdict_moves(
    entries: dict[str, LedgerEntry],
    visitors: Iterable[str],
    batch: str,
    file: str,
    accepted: bool,
    max_attempts: int,
    reason: str = "",
    not_ingested: dict[str, str] | None = None,
) -> list[Move]:
    """Adobe's verdict on ``file``: its visitors (still owned by its batch) become accepted, or
    retry / given_up by their attempts; in an accepted file, the ones Adobe named as not
    ingested (``not_ingested``: visitor -> Adobe's reason) become ``rejected``."""
    refused = not_ingested or {}
    moves = []
    for visitor in visitors:
        current = entries.get(visitor)
        if current is None or current.claim != batch or current.state not in IN_FLIGHT:
            continue  # moved on since (or never ours): the verdict does not apply to it
        if accepted and visitor in refused:
            entry = replace(current, state=VisitorState.REJECTED, file=file,
                            reason=clip(refused[visitor]))  # fmt: skip
            moves.append(Move(visitor, entry, own=batch, own_states=IN_FLIGHT))
            continue
        if accepted:
            state = VisitorState.ACCEPTED
        elif current.attempts >= max_attempts:
            state = VisitorState.GIVEN_UP
        else:
            state = VisitorState.RETRY
        entry = replace(current, state=state, file=file, reason="" if accepted else clip(reason))
        moves.append(Move(visitor, entry, own=batch, own_states=IN_FLIGHT))
    return moves
