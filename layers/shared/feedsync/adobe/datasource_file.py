"""Adobe Analytics data source files (generic, with transactionID): the rules they must follow.

Tab-delimited text, optional ``#`` comment lines, then one header row such as
``Date<TAB>transactionID<TAB>Event 51<TAB>Evar 22``. Headers need the space (``Evar 22``),
dates are ``MM/DD/YYYY/HH/mm/SS``, every row needs a dimension and a metric, a row is at most
4,096 bytes, a file spans at most 90 days, dimension values may not hold ``;``, a file stays
under 50 MB.
"""

from __future__ import annotations

import re
from datetime import datetime

MAX_ROW_BYTES = 4096
MAX_DAYS = 90
MAX_FILE_BYTES = 50 * 1024 * 1024
DATE_FORMAT = "%m/%d/%Y/%H/%M/%S"

_EVAR = re.compile(r"Evar (\d{1,3})")
_EVENT = re.compile(r"Event (\d{1,4})")
_NO_SPACE = re.compile(r"(?i)(evar|event|prop)(\d+)")
_NAMED_METRICS = frozenset({"Revenue", "Units", "Orders", "Page Views", "Visits", "Cart Opens"})
_DATE = re.compile(r"\d{2}/\d{2}/\d{4}(/\d{2}/\d{2}/\d{2})?")


def _valid_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, DATE_FORMAT if len(value) > 10 else "%m/%d/%Y")
    except ValueError:
        return False
    return True


def is_metric(header: str) -> bool:
    return bool(_EVENT.fullmatch(header)) or header in _NAMED_METRICS


def header_problem(header: str) -> str | None:
    """Why a column header would be refused, or None."""
    if not header or header != header.strip():
        return f"empty or padded column header {header!r}"
    match = _NO_SPACE.fullmatch(header)
    if match:
        kind = match.group(1).capitalize()
        return f"column header {header!r} needs the space: {kind} {match.group(2)!s}"
    evar = _EVAR.fullmatch(header)
    if evar and not 1 <= int(evar.group(1)) <= 250:
        return f"column header {header!r}: eVars are numbered 1-250"
    event = _EVENT.fullmatch(header)
    if event and not 1 <= int(event.group(1)) <= 1000:
        return f"column header {header!r}: events are numbered 1-1000"
    return None


def format_date(moment: datetime) -> str:
    return moment.strftime(DATE_FORMAT)


def problems(data: bytes, limit: int = 20) -> list[str]:
    """Every rule the file breaks (up to ``limit`` messages, with line numbers); [] if valid."""
    found: list[str] = []

    def add(message: str) -> bool:
        found.append(message)
        return len(found) >= limit

    if len(data) >= MAX_FILE_BYTES:
        add(f"file is {len(data)} bytes; Adobe takes files under {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [*found, f"not UTF-8 at byte {exc.start}"]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        index += 1
    if index == len(lines):
        return [*found, "no header row"]
    headers = lines[index].rstrip("\r").split("\t")
    for header in headers:
        problem = header_problem(header)
        if problem and add(f"line {index + 1}: {problem}"):
            return found
    if "Date" not in headers:
        add(f"line {index + 1}: no Date column")
    if not any(is_metric(h) for h in headers):
        add(f"line {index + 1}: no metric column (Event N, Revenue, Units...)")
    date_at = headers.index("Date") if "Date" in headers else -1
    metric_at = [i for i, h in enumerate(headers) if is_metric(h)]
    dimension_at = [i for i, h in enumerate(headers) if i != date_at and i not in metric_at]
    days: set[str] = set()
    rows = 0
    for number, line in enumerate(lines[index + 1 :], start=index + 2):
        line = line.rstrip("\r")
        rows += 1
        if len(line.encode("utf-8")) > MAX_ROW_BYTES and add(
            f"line {number}: row is longer than {MAX_ROW_BYTES} bytes"
        ):
            return found
        fields = line.split("\t")
        if len(fields) != len(headers):
            if add(f"line {number}: {len(fields)} fields, header has {len(headers)}"):
                return found
            continue
        if date_at >= 0:
            value = fields[date_at]
            if not _valid_date(value):
                if add(f"line {number}: Date {value!r} is not MM/DD/YYYY/HH/mm/SS"):
                    return found
            else:
                days.add(value[:10])
        if not any(fields[i] for i in dimension_at) and add(f"line {number}: no dimension value"):
            return found
        if not any(fields[i] for i in metric_at) and add(f"line {number}: no metric value"):
            return found
        for i in metric_at:
            value = fields[i]
            if (
                value
                and not re.fullmatch(r"-?\d+(\.\d+)?", value)
                and add(f"line {number}: {headers[i]} value {value!r} is not a number")
            ):
                return found
        for i in dimension_at:
            if ";" in fields[i] and add(f"line {number}: {headers[i]} value holds ';'"):
                return found
    if rows == 0:
        add("no data rows")
    if len(days) > MAX_DAYS:
        add(f"file spans {len(days)} days; Adobe takes at most {MAX_DAYS} per file")
    return found
