"""Adobe Analytics data source files: the one vocabulary and the rules they must follow.

Source: AdobeDocs/analytics.en ``help/import/data-sources/file-format.md``. A ``.txt`` file,
tab-delimited, optional ``#`` comment lines, then one header row. Headers are not
case-sensitive but need their space (``Evar 1``, not ``eVar1``); only the headers in the tables
below exist. ``Date`` is the first column, ``MM/DD/YYYY`` or ``MM/DD/YYYY/HH/mm/SS``; every row
holds a dimension and a metric, at most 4,096 bytes; a file spans at most 90 days; dimension
values may not hold ``;`` (Adobe skips such rows). Files stay under 50 MB.

The mapping loader, the upload file builder, ``feedsync datasources upload`` and the sandbox all
use this module, so a header is accepted or refused the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

MAX_ROW_BYTES = 4096
MAX_DAYS = 90
MAX_FILE_BYTES = 50 * 1024 * 1024

# The documented headers (file-format.md, "Headers"), in their canonical spelling.
DIMENSIONS = (
    "Category",
    "Marketing Channel",
    "Marketing Channel Detail",
    "Product",
    "Tracking Code",
    "transactionID",
    "Zip",
)
METRICS = (
    "Cart Adds",
    "Cart Removes",
    "Cart Views",
    "Cart Opens",
    "Checkouts",
    "Orders",
    "Price",
    "Quantity",
)
EVAR_RANGE = range(1, 251)  # Evar 1 - Evar 250
EVENT_RANGE = range(1, 1001)  # Event 1 - Event 1000
DATE = "Date"

_CANONICAL = {h.lower(): h for h in (*DIMENSIONS, *METRICS, DATE)}
_NUMBERED = re.compile(r"(?i)(evar|event) (\d{1,4})")
_NO_SPACE = re.compile(r"(?i)(evar|event|prop)(\d+)")
# Names people reach for that are not data source headers, and what to use instead.
_HINTS = {
    "revenue": "use Price (revenue) or an Event N",
    "units": "use Quantity (units) or an Event N",
    "page views": "page views cannot be uploaded; use an Event N",
    "visits": "visits cannot be uploaded; use an Event N",
    "visitors": "visitors cannot be uploaded; use an Event N",
    "transactionid": "spell it transactionID",
}
_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:/(\d{1,2})/(\d{1,2})/(\d{1,2}))?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True)
class Header:
    name: str  # canonical spelling
    kind: str  # "date" | "dimension" | "metric"


def allowed_headers() -> str:
    """The vocabulary in one line, for refusals."""
    return (
        f"dimensions {', '.join(DIMENSIONS)}, Evar 1-250; "
        f"metrics {', '.join(METRICS)}, Event 1-1000; and Date first"
    )


def parse_header(text: str) -> Header | str:
    """The header ``text`` stands for, or why Adobe would refuse it."""
    if not text or text != text.strip():
        return f"empty or padded column header {text!r}"
    lowered = text.lower()
    if lowered in _CANONICAL:
        name = _CANONICAL[lowered]
        kind = "date" if name == DATE else "metric" if name in METRICS else "dimension"
        return Header(name, kind)
    numbered = _NUMBERED.fullmatch(text)
    if numbered:
        return _numbered(text, numbered.group(1).lower(), int(numbered.group(2)))
    squashed = _NO_SPACE.fullmatch(text)
    if squashed:
        kind, number = squashed.group(1).capitalize(), squashed.group(2)
        if kind == "Prop":
            return f"column header {text!r}: props are not data source headers (use an Evar)"
        return f"column header {text!r} needs the space: {kind} {number}"
    hint = _HINTS.get(lowered)
    suffix = f" ({hint})" if hint else ""
    return (
        f"column header {text!r} is not a data source header{suffix}; allowed: {allowed_headers()}"
    )


def _numbered(text: str, kind: str, number: int) -> Header | str:
    if kind == "evar":
        if number not in EVAR_RANGE:
            return f"column header {text!r}: eVars are numbered 1-250"
        return Header(f"Evar {number}", "dimension")
    if number not in EVENT_RANGE:
        return f"column header {text!r}: events are numbered 1-1000"
    return Header(f"Event {number}", "metric")


def header_problem(text: str) -> str | None:
    parsed = parse_header(text)
    return parsed if isinstance(parsed, str) else None


def canonical(text: str) -> str:
    """The canonical spelling of a valid header (``evar 22`` -> ``Evar 22``)."""
    parsed = parse_header(text)
    if isinstance(parsed, str):
        raise ValueError(parsed)
    return parsed.name


def is_metric(text: str) -> bool:
    parsed = parse_header(text)
    return not isinstance(parsed, str) and parsed.kind == "metric"


def valid_date(value: str) -> bool:
    """``MM/DD/YYYY`` or ``MM/DD/YYYY/HH/mm/SS``, zero padding optional, a real moment."""
    match = _DATE.fullmatch(value)
    if not match:
        return False
    month, day, year, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def date_day(value: str) -> str:
    """The calendar day of a valid date value (to count distinct days)."""
    month, day, year = value.split("/")[:3]
    return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"


class RowRules:
    """The row rules for one header row, prepared once: which columns are dimensions and
    metrics, and each distinct Date already judged (a batch's rows share one date)."""

    def __init__(self, headers: list[Header]) -> None:
        self.width = len(headers)
        self.dims = [i for i, h in enumerate(headers) if h.kind == "dimension"]
        self.metrics = [(i, h.name) for i, h in enumerate(headers) if h.kind == "metric"]
        self.names = [h.name for h in headers]
        self._dims = _picker(self.dims)
        self._metrics = _picker([i for i, _ in self.metrics])
        self._dates: dict[str, bool] = {}

    def date_ok(self, value: str) -> bool:
        known = self._dates.get(value)
        if known is None:
            known = self._dates[value] = valid_date(value)
        return known

    def problems(self, fields: list[str]) -> list[str]:
        """What is wrong with one data row (without its line number)."""
        if len(fields) != self.width:
            return [f"{len(fields)} fields, header has {self.width}"]
        dims, metrics = self._dims(fields), self._metrics(fields)
        if (  # the common case, decided without building a message
            self.date_ok(fields[0])
            and any(dims)
            and any(metrics)
            and all(_is_number(v) for v in metrics if v)
            and not any(";" in v for v in dims)
        ):
            return []
        found = []
        if not self.date_ok(fields[0]):
            found.append(f"Date {fields[0]!r} is not MM/DD/YYYY/HH/mm/SS or MM/DD/YYYY")
        if not any(dims):
            found.append("no dimension value")
        if not any(metrics):
            found.append("no metric value")
        names = [name for _, name in self.metrics]
        found += [f"{n} value {v!r} is not a number" for n, v in zip(names, metrics, strict=True)
                  if v and not _is_number(v)]  # fmt: skip
        found += [f"{self.names[i]} value holds ';'" for i in self.dims if ";" in fields[i]]
        return found


def _picker(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The fields at ``indexes``, always as a tuple."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return itemgetter(*indexes) if indexes else lambda fields: ()


def _is_number(value: str) -> bool:
    return (value.isascii() and value.isdigit()) or _NUMBER.fullmatch(value) is not None


def row_problems(headers: list[Header], fields: list[str]) -> list[str]:
    """What is wrong with one data row (without its line number)."""
    return RowRules(headers).problems(fields)


def header_row_problems(texts: list[str]) -> tuple[list[Header], list[str]]:
    headers: list[Header] = []
    found: list[str] = []
    for text in texts:
        parsed = parse_header(text)
        if isinstance(parsed, str):
            found.append(parsed)
            parsed = Header(text, "dimension")  # keep checking the rows against the rest
        headers.append(parsed)
    if not any(h.kind == "date" for h in headers):
        found.append("no Date column (it must be the first column)")
    elif headers[0].kind != "date":
        found.append("Date must be the first column")
    if sum(h.kind == "date" for h in headers) > 1:
        found.append("Date appears twice")
    names = [h.name for h in headers]
    found += [
        f"header {n!r} appears twice" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    if not any(h.kind == "metric" for h in headers):
        found.append(f"no metric column ({', '.join(METRICS)} or Event N)")
    if not any(h.kind == "dimension" for h in headers):
        found.append("no dimension column (Evar N, transactionID, ...)")
    return headers, found


def _lines(data: bytes) -> tuple[list[str], str | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], f"not UTF-8 at byte {exc.start}"
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines, None


def problems(data: bytes, limit: int = 20) -> list[str]:
    """Every rule the file breaks (up to ``limit`` messages, with line numbers); [] if valid."""
    found: list[str] = []
    if len(data) >= MAX_FILE_BYTES:
        found.append(f"file is {len(data)} bytes; Adobe takes files under {MAX_FILE_BYTES} bytes")
    lines, error = _lines(data)
    if error:
        return [*found, error]
    index = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    if index == len(lines):
        return [*found, "no header row"]
    headers, header_errors = header_row_problems(lines[index].split("\t"))
    found += [f"line {index + 1}: {p}" for p in header_errors]
    if not headers or headers[0].kind != "date":
        return found[:limit]  # rows cannot be read without their Date column
    rules = RowRules(headers)
    days: set[str] = set()
    for number, line in enumerate(lines[index + 1 :], start=index + 2):
        if len(line.encode("utf-8")) > MAX_ROW_BYTES:
            found.append(f"line {number}: row is longer than {MAX_ROW_BYTES} bytes")
        fields = line.split("\t")
        found += [f"line {number}: {p}" for p in rules.problems(fields)]
        if fields and rules.date_ok(fields[0]):
            days.add(date_day(fields[0]))
        if len(found) >= limit:
            return found[:limit]
    if index + 1 == len(lines):
        found.append("no data rows")
    if len(days) > MAX_DAYS:
        found.append(f"file spans {len(days)} days; Adobe takes at most {MAX_DAYS} per file")
    return found[:limit]
