"""The CRM as the pipeline sees it: visitor ids in, CRM records out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Protocol

from feedsync.crm.marketo import MarketoClient
from feedsync.errors import ConfigError


class CrmSource(Protocol):
    name: str

    @property
    def calls(self) -> int:
        """Calls made to the CRM so far (0 for a file)."""
        ...

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Visitor id -> CRM record, for those of ``ids`` the CRM knows."""
        ...


class MarketoSource:
    name = "marketo"

    def __init__(
        self, client: MarketoClient, id_field: str, fields: Sequence[str], workers: int = 1
    ) -> None:
        self.client = client
        self.id_field = id_field
        self.fields = list(dict.fromkeys(fields))
        self.workers = workers

    @property
    def calls(self) -> int:
        return self.client.stats.calls

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.client.lookup(self.id_field, ids, self.fields, workers=self.workers)


class FileSource:
    """A CSV (header row) or JSON Lines export holding the visitor id field and CRM fields.

    Loaded once per invocation into a dict keyed by visitor id, keeping only mapped fields.
    """

    name = "file"
    calls = 0

    def __init__(self, data: bytes, where: str, id_field: str, fields: Sequence[str]) -> None:
        self.where = where
        self.id_field = id_field
        keep = set(fields) | {id_field}
        self.records: dict[str, dict[str, Any]] = {}
        text = data.decode("utf-8-sig")
        rows = (
            _json_lines(text, where) if _looks_like_json(text) else _csv_rows(text, where, id_field)
        )
        for row in rows:
            key = str(row.get(id_field) or "").strip()
            if key and key not in self.records:
                self.records[key] = {k: v for k, v in row.items() if k in keep}

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {i: self.records[i] for i in ids if i in self.records}


def _looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def _json_lines(text: str, where: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ConfigError(f"{where}: line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def _csv_rows(text: str, where: str, id_field: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if id_field not in (reader.fieldnames or []):
        raise ConfigError(f"{where}: no {id_field!r} column (columns: {reader.fieldnames})")
    return list(reader)
