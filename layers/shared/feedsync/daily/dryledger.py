"""A dry run's ledger: reads the real one, keeps its own moves in memory (nothing is written),
so a dry run shows what a real run would send without changing anyone's state. Misses are not
kept (a dry run never resumes a batch), so memory grows with matched visitors only."""

from __future__ import annotations

from collections.abc import Sequence

from feedsync.state.ledger import SHORT_LIVED, LedgerEntry, Move
from feedsync.state.ports import Ledger


class DryLedger:
    def __init__(self, real: Ledger) -> None:
        self.real = real
        self.moved: dict[tuple[str, str, str], LedgerEntry] = {}

    def entries(
        self, rsid: str, destination: str, ids: Sequence[str], consistent: bool = True
    ) -> dict[str, LedgerEntry]:
        found = self.real.entries(rsid, destination, ids, consistent)
        for visitor in ids:
            mine = self.moved.get((rsid, destination, visitor))
            if mine is not None:
                found[visitor] = mine
        return found

    def move(self, rsid: str, destination: str, moves: Sequence[Move]) -> set[str]:
        current = self.entries(rsid, destination, [m.visitor for m in moves])
        done = set()
        for move in moves:
            if move.allows(current.get(move.visitor)):
                if move.entry.state not in SHORT_LIVED:
                    self.moved[(rsid, destination, move.visitor)] = move.entry
                done.add(move.visitor)
        return done
