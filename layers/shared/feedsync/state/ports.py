"""What the daily run needs from the outside world, as Protocols (the ``aws`` package and the
in-memory fakes in the tests implement them).

Run state and upload records cross the port as JSON-ready dicts: the typed records convert
themselves (``to_json``/``from_json``), and an adapter only stores documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from feedsync.state.records import LedgerEntry, LockHolder, OpenUpload


class Ledger(Protocol):
    """Who was already enriched (or looked up in vain), per report suite."""

    def entries(self, rsid: str, ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """Live (unexpired) entries of ``ids``."""
        ...

    def record(self, rsid: str, entries: Iterable[tuple[str, LedgerEntry]]) -> int: ...


class RunState(Protocol):
    """Checkpoints of one run (``run`` = delivery key @ content generation) and its lock."""

    def batches(self, run: str) -> dict[int, dict[str, Any]]: ...

    def save_batch(self, run: str, index: int, record: dict[str, Any]) -> None: ...

    def upload(self, run: str, index: int, destination: str) -> dict[str, Any] | None: ...

    def save_upload(
        self, run: str, index: int, destination: str, record: dict[str, Any]
    ) -> None: ...

    def verdicts(self, run: str) -> list[dict[str, Any]]: ...

    def save_verdict(self, run: str, name: str, record: dict[str, Any]) -> None: ...

    def acquire(self, run: str, owner: str, seconds: float, force: bool = False) -> bool: ...

    def renew(self, run: str, owner: str, seconds: float) -> bool:
        """Extend a lock ``owner`` still holds; False when it no longer does (never creates)."""
        ...

    def holder(self, run: str) -> LockHolder | None: ...

    def release(self, run: str, owner: str) -> None: ...


class UploadLog(Protocol):
    """Files sent to Adobe whose verdict is still to be read."""

    def add(self, upload: OpenUpload) -> None: ...

    def open_uploads(self) -> list[OpenUpload]: ...

    def close(self, upload: OpenUpload) -> None: ...


Metric = Callable[[str, float], None]
