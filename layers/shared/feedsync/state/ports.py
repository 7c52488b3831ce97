"""What the daily run needs from the outside world, as Protocols (the ``aws`` package and the
in-memory fakes in the tests implement them).

Records cross the ports as JSON-ready dicts or typed records that convert themselves
(``to_json``/``from_json``); an adapter only stores documents and enforces the conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from feedsync.state.ledger import LedgerEntry, Move
from feedsync.state.records import FileRecord, LockHolder


class Ledger(Protocol):
    """Each visitor's state per report suite and destination (state/ledger.py)."""

    def entries(
        self, rsid: str, destination: str, ids: Sequence[str], consistent: bool = True
    ) -> dict[str, LedgerEntry]:
        """Live (unexpired) entries of ``ids`` at ``destination``; ``consistent=False``: an
        eventually consistent read (half the cost; may miss a write of the last second)."""
        ...

    def move(self, rsid: str, destination: str, moves: Sequence[Move]) -> set[str]:
        """Apply each move whose condition holds; the visitors moved (the rest: left alone)."""
        ...


class RunState(Protocol):
    """Per run key (the delivery key, or ``dry-run/<id>/<key>`` for a dry run): the walk of
    each content generation, the batches in flight (of any generation), each batch's plan per
    destination, the record of every file sent, and the delivery's lock."""

    def walk(self, key: str, generation: str) -> dict[str, Any] | None: ...

    def save_walk(self, key: str, generation: str, record: dict[str, Any]) -> bool:
        """Store ``record`` (its ``version`` one above the stored one, or 1 for a first save);
        False when another invocation saved in between (nothing written)."""
        ...

    def in_flight(self, key: str) -> list[dict[str, Any]]:
        """Every batch started and not finished under ``key``, whatever its generation."""
        ...

    def in_flight_one(self, key: str, batch_id: str) -> dict[str, Any] | None: ...

    def save_in_flight(self, key: str, batch_id: str, record: dict[str, Any]) -> None: ...

    def drop_in_flight(self, key: str, batch_id: str) -> None: ...

    def plan(self, key: str, walk: str, batch: int, destination: str) -> dict[str, Any] | None: ...

    def save_plan(
        self, key: str, walk: str, batch: int, destination: str, record: dict[str, Any]
    ) -> None: ...

    def files(self, key: str, limit: int | None = None) -> list[FileRecord]:
        """Every file record under ``key`` (the first ``limit`` of them, in key order)."""
        ...

    def file(self, key: str, file_id: str) -> FileRecord | None: ...

    def save_file(self, key: str, record: FileRecord, counters: Counters = ()) -> bool:
        """Store ``record`` if the stored one is ``record.version - 1`` (none for version 1),
        and add ``counters`` in the same transaction; False when another writer saved in
        between (nothing written, nothing counted)."""
        ...

    def counters(self, key: str, prefix: str) -> dict[str, dict[str, int]]:
        """The counter items under ``key`` whose name starts with ``prefix`` (name -> counts)."""
        ...

    def counter(self, key: str, name: str) -> dict[str, int]: ...

    def add_counters(self, key: str, counters: Counters) -> None:
        """Add to counter items on their own (a rebuild writes them whole: ``set_counter``)."""
        ...

    def set_counter(self, key: str, name: str, values: dict[str, int]) -> None: ...

    def forget(self, key: str, keep: Sequence[str] = ()) -> int:
        """Remove what is stored under ``key`` but the items whose names start with one of
        ``keep`` (an operator's ``feedsync forget``)."""
        ...

    def acquire(self, key: str, owner: str, seconds: float, force: bool = False) -> bool: ...

    def renew(self, key: str, owner: str, seconds: float) -> bool:
        """Extend a lock ``owner`` still holds; False when it no longer does (never creates)."""
        ...

    def holder(self, key: str) -> LockHolder | None: ...

    def release(self, key: str, owner: str) -> None: ...


class UploadLog(Protocol):
    """The reconciliation queue: files sent to Adobe whose verdict is still to be read."""

    def add(self, record: FileRecord) -> None: ...

    def open_uploads(self) -> list[FileRecord]: ...

    def close(self, record: FileRecord) -> None: ...


Metric = Callable[[str, float], None]
# counter item name -> {field: amount to add}: tallies a view reads instead of every entry
Counters = Sequence[tuple[str, dict[str, int]]]
