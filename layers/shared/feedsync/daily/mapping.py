"""The mapping file: which CRM fields become which Adobe data source columns.

```json
{"visitor_id_field": "Adobe_Visitor_ID",
 "success_event": "Event 51",
 "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23"},
 "crm_id_field": "id",
 "max_bytes": {"Evar 23": 100}}
```
``visitor_id_field``: the CRM field holding the Adobe visitor id (what lookups filter on).
``success_event``: a metric column set to 1 on every row. ``columns``: CRM field -> data source
header (``Evar N`` or any other header). ``crm_id_field`` (default ``id``): the CRM id, used as
Target's ``thirdPartyId``. ``max_bytes``: per-column UTF-8 byte limits (default 255).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from feedsync.adobe.datasource_file import allowed_headers, canonical, is_metric, parse_header
from feedsync.daily.aep_mapping import AepMapping
from feedsync.errors import ConfigError
from feedsync.state.records import Rejected

DEFAULT_MAX_BYTES = 255
_STRIP = re.compile(r"[\t\r\n]+")
_SPACES = re.compile(r" {2,}")


class ValueProblem(ValueError):
    pass


def normalise(value: Any, max_bytes: int) -> str:
    """A CRM value as data source text: booleans and numbers spelled plainly; tabs, newlines and
    semicolons removed; cut to ``max_bytes`` of UTF-8 on a character boundary."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem(f"not a finite number: {value!r}")
        text = str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")
    elif isinstance(value, str):
        text = value
    else:
        raise ValueProblem(f"a {type(value).__name__} is not a column value")
    text = _SPACES.sub(" ", _STRIP.sub(" ", text).replace(";", "")).strip()
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        text = raw[:max_bytes].decode("utf-8", "ignore").rstrip()
    return text


_FORMULA_START = ("=", "+", "-", "@")


def formula_safe(text: str) -> str:
    """A text value that a spreadsheet would run as a formula (it begins with = + - or @ and is
    not a number) gets a leading apostrophe, as OWASP's CSV-injection guidance says: the data
    source and BDIA files - and their copies in the state bucket - are files people open."""
    if not text.startswith(_FORMULA_START):
        return text
    try:
        float(text)
        return text  # -12.5: a number, not a formula
    except ValueError:
        return "'" + text


def plain(value: Any) -> str:
    """A CRM value as text for Experience Platform: booleans and numbers spelled plainly,
    strings untouched (Platform takes any string its schema type accepts: no data source
    clean-up, no 255-byte cut)."""
    if isinstance(value, str):
        return value
    return normalise(value, 1 << 30)


@dataclass(frozen=True)
class MappedRow:
    visitor: str
    crm_id: str
    values: dict[str, str]  # data source header -> value
    attributes: dict[str, str]  # CRM field -> value (Target profile attributes)
    platform: dict[str, str] = field(default_factory=dict)  # aep field -> value, untouched


@dataclass(frozen=True)
class Mapping:
    visitor_id_field: str
    success_event: str
    columns: dict[str, str]
    crm_id_field: str = "id"
    max_bytes: dict[str, int] = field(default_factory=dict)
    source: str = "mapping"
    aep: AepMapping | None = None  # the ``aep`` section (destination aep)

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> Mapping:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        problems: list[str] = []
        visitor = data.get("visitor_id_field")
        if not isinstance(visitor, str) or not visitor.strip():
            problems.append("visitor_id_field: name the CRM field holding the Adobe visitor id")
        event = _success_event(data.get("success_event"), problems)
        columns = _columns(data.get("columns"), event, problems)
        limits = _limits(data.get("max_bytes", {}), problems)
        aep = AepMapping.parse(data.get("aep"), problems)
        unknown = set(data) - _KEYS
        if unknown:
            problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
        if problems:
            raise ConfigError(f"{source}: " + "; ".join(problems))
        return cls(
            visitor_id_field=str(visitor),
            success_event=event,
            columns=columns,
            crm_id_field=str(data.get("crm_id_field") or "id"),
            max_bytes={canonical_or_same(k): v for k, v in limits.items()},
            source=source,
            aep=aep,
        )

    @property
    def headers(self) -> list[str]:
        return ["Date", "transactionID", self.success_event, *self.columns.values()]

    @property
    def crm_fields(self) -> list[str]:
        """Fields to request from the CRM."""
        aep = list(self.aep.fields) if self.aep else []
        return list(dict.fromkeys([self.visitor_id_field, self.crm_id_field, *self.columns, *aep]))

    def map(self, visitor: str, record: dict[str, Any]) -> MappedRow | Rejected:
        values: dict[str, str] = {}
        attributes: dict[str, str] = {}
        notes: list[str] = []
        for crm_field, header in self.columns.items():
            limit = self.max_bytes.get(header, DEFAULT_MAX_BYTES)
            try:
                text = normalise(record.get(crm_field), limit)
            except ValueProblem as exc:
                notes.append(f"{crm_field}: {exc}")
                continue
            # files a person opens (data source, BDIA); Target's attributes as they are
            safe = formula_safe(text).encode("utf-8")[:limit].decode("utf-8", "ignore")
            values[header] = safe
            attributes[crm_field] = text
        platform: dict[str, str] = {}
        for crm_field in self.aep.fields if self.aep else ():
            try:
                platform[crm_field] = plain(record.get(crm_field))
            except ValueProblem as exc:
                notes.append(f"{crm_field}: {exc}")
        if notes:
            return Rejected(visitor, "; ".join(notes))
        if not any(attributes.values()) and not any(platform.values()):
            return Rejected(visitor, "no mapped field has a value")
        try:
            crm_id = normalise(record.get(self.crm_id_field), 255)
        except ValueProblem:
            crm_id = ""
        return MappedRow(visitor, crm_id, values, attributes, platform)


_KEYS = frozenset(
    {"visitor_id_field", "success_event", "columns", "crm_id_field", "max_bytes", "aep"}
)


def canonical_or_same(header: str) -> str:
    try:
        return canonical(header)
    except ValueError:
        return header


def _success_event(event: Any, problems: list[str]) -> str:
    if not isinstance(event, str) or not is_metric(event):
        problems.append(
            f"success_event: {event!r} is not a metric such as 'Event 51' "
            f"(allowed: {allowed_headers()})"
        )
        return str(event)
    return canonical(event)


def _columns(columns: Any, event: str, problems: list[str]) -> dict[str, str]:
    """CRM field -> canonical header; only dimensions, each once, never Date/transactionID."""
    if not isinstance(columns, dict) or not columns:
        problems.append("columns: map at least one CRM field to a data source header")
        return {}
    out: dict[str, str] = {}
    seen = {"Date", "transactionID", event}
    for crm_field, header in columns.items():
        if not isinstance(header, str):
            problems.append(f"columns.{crm_field}: the header must be a string")
            continue
        parsed = parse_header(header)
        if isinstance(parsed, str):
            problems.append(f"columns.{crm_field}: {parsed}")
            continue
        if parsed.name in seen:
            problems.append(f"columns.{crm_field}: header {parsed.name!r} is used twice")
        elif parsed.kind != "dimension":
            problems.append(
                f"columns.{crm_field}: {header!r} is a {parsed.kind}; map CRM fields to dimensions"
            )
        seen.add(parsed.name)
        out[str(crm_field)] = parsed.name
    return out


def _limits(limits: Any, problems: list[str]) -> dict[str, int]:
    if not isinstance(limits, dict) or not all(
        isinstance(v, int) and 0 < v <= 4096 for v in limits.values()
    ):
        problems.append("max_bytes: header -> byte limit (1..4096)")
        return {}
    return {str(k): int(v) for k, v in limits.items()}
