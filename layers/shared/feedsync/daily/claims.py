"""What a claim in the ledger stands for now. A matched visitor's entry names the batch that
claimed it (``<delivery key>@<walk>#NNNNN``); whether that batch's files were sent and what Adobe
said of them is on the batch's plan and counter, not on each visitor's entry. Read once per
claim and invocation: a batch's visitors share it.
"""

from __future__ import annotations

from feedsync.daily.send import batch_of
from feedsync.state import tally
from feedsync.state.ports import RunState


class Claims:
    def __init__(self, runs: RunState) -> None:
        self.runs = runs
        self._plans: dict[tuple[str, str], dict[str, object] | None] = {}
        self._flying: dict[str, bool] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def _where(self, claim: str) -> tuple[str, str, int] | None:
        found = batch_of(claim)
        if found is None:
            return None
        key, batch_id = found
        walk, _, number = batch_id.rpartition("#")
        return (key, walk, int(number)) if number.isdigit() else None

    def _plan(self, claim: str, destination: str) -> dict[str, object] | None:
        if (claim, destination) not in self._plans:
            where = self._where(claim)
            self._plans[(claim, destination)] = (
                None if where is None else self.runs.plan(where[0], where[1], where[2], destination)
            )
        return self._plans[(claim, destination)]

    def _in_flight(self, claim: str) -> bool:
        if claim not in self._flying:
            found = batch_of(claim)
            self._flying[claim] = found is not None and (
                self.runs.in_flight_one(found[0], found[1]) is not None
            )
        return self._flying[claim]

    def dead(self, claim: str, destination: str) -> bool:
        """Nothing will finish what the claim planned: its batch is neither in flight nor left
        a plan for the destination (the delivery was forgotten under it, or the claim is of
        the layout before walk ids)."""
        if self._where(claim) is None:
            return True
        return not self._in_flight(claim) and self._plan(claim, destination) is None

    def accepted(self, claim: str, destination: str) -> bool:
        """Adobe accepted every file the claim's batch sent to the destination."""
        where = self._where(claim)
        plan = self._plan(claim, destination)
        if where is None or plan is None or plan.get("state") != "sent":
            return False
        files = plan.get("files") or []
        name = tally.batch(claim, destination)
        if (where[0], name) not in self._counts:
            self._counts[(where[0], name)] = self.runs.counter(where[0], name).get("accepted", 0)
        return isinstance(files, list) and self._counts[(where[0], name)] >= len(files)
