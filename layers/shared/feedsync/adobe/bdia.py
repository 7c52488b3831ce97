"""Bulk Data Insertion API: gzip CSV files of server-side hits, validation, paced uploads.

Data sent here is permanent. Each upload carries a visitor group (``x-adobe-vgid``) and an
idempotency key (``x-adobe-idempotency-key``); a lost answer is resolved by asking for the key
before sending again. Adobe allows about one request a second overall and one every 20 s per
visitor group.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from feedsync.adobe.errors import AdobeApiError, json_body
from feedsync.adobe.session import AdobeSession
from feedsync.errors import OutcomeUnknownError

SERVICE = "Adobe Bulk Data Insertion"
EVENTS_PATH = "/aa/collect/v1/events"
MAX_GZIP_BYTES = 100 * 1024 * 1024
MAX_RAW_BYTES = 1024 * 1024 * 1024  # uncompressed
UPLOAD_ATTEMPTS = 3
NOT_FOUND = "File not found"  # the key lookup's answer for a key Adobe never received

# Source: AdobeDocs/analytics-2.0-apis src/pages/guides/endpoints/bulk-data-insertion/
# file-format.md ("Required columns") and mcseed.md. Header names are not case-sensitive
# (file-format.md), except the customerIDType inside customerID.<type>.id (mcseed.md).
VISITOR_ID_COLUMNS = ("visitorid", "marketingcloudvisitorid", "ipaddress")
REQUIRED_COLUMNS = {
    "timestamp": "timestamp",
    "reportsuiteid": "reportSuiteID",
    "useragent": "userAgent",
}
PAGE_COLUMNS = ("pageurl", "pagename", "querystring")
_CUSTOMER_ID = re.compile(r"(?i)customerid\.(.+)\.id")
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})?"  # no fractions: ms not allowed
)
_ECID = re.compile(r"\d{38}")


def _lower(columns: Sequence[str]) -> list[str]:
    return [c.lower() for c in columns]


def seeded_customer_types(columns: Sequence[str]) -> list[str]:
    """customerIDTypes whose ``.id`` column comes with its ``.isMCSeed`` column."""
    lowered = set(_lower(columns))
    out = []
    for column in columns:
        match = _CUSTOMER_ID.fullmatch(column)
        if match and f"customerid.{match.group(1).lower()}.ismcseed" in lowered:
            out.append(match.group(1))
    return out


def column_problems(columns: Sequence[str]) -> list[str]:
    lowered = _lower(columns)
    found = [f"missing column {name}" for c, name in REQUIRED_COLUMNS.items() if c not in lowered]
    if not any(c in VISITOR_ID_COLUMNS for c in lowered) and not seeded_customer_types(columns):
        found.append(
            "no visitor id column (visitorID, marketingCloudVisitorID, IPAddress, or "
            "customerID.<type>.id with customerID.<type>.isMCSeed)"
        )
    has_link = "linktype" in lowered and ("linkname" in lowered or "linkurl" in lowered)
    if not has_link and not any(c in lowered for c in PAGE_COLUMNS):
        found.append("needs pageName, pageURL or queryString, or linkType with linkName/linkURL")
    dupes = sorted({c for c in lowered if lowered.count(c) > 1})
    if dupes:
        found.append(f"columns repeated (names are not case-sensitive): {', '.join(dupes)}")
    return found


def _value(row: Mapping[str, str], name: str) -> str:
    """A row value by column name, case-insensitively."""
    for key, value in row.items():
        if key.lower() == name:
            return value
    return ""


def _visitor(row: Mapping[str, str]) -> str:
    """The row's visitor in Adobe's priority order (file-format.md): seeded customer id,
    visitorID, marketingCloudVisitorID, IPAddress."""
    for customer_type in seeded_customer_types(list(row)):
        seed = _value(row, f"customerid.{customer_type.lower()}.ismcseed")
        value = _value(row, f"customerid.{customer_type.lower()}.id")
        if seed == "1" and value:
            return value
    for name in VISITOR_ID_COLUMNS:
        if _value(row, name):
            return _value(row, name)
    return ""


def parse_timestamp(value: str) -> int | None:
    """Epoch seconds of a Unix or ISO-8601 timestamp (no milliseconds), else None."""
    if value.isdigit() and value.isascii():
        return int(value)
    if not _ISO_8601.fullmatch(value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def is_ecid(value: str) -> bool:
    """An Experience Cloud ID (``mid``): 38 digits."""
    return bool(_ECID.fullmatch(value))


def _csv_line(values: Sequence[str]) -> str:
    """One RFC 4180 row; an empty last field is written as "" because Adobe refuses a trailing
    comma (file-format.md, "Trailing commas ... are not permitted")."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    line = buffer.getvalue()
    if values and values[-1] == "":
        line = line[:-1] + '""\n'
    return line


class BdiaFileWriter:
    """Writes one gzip CSV in memory; refuses rows that break the file rules.

    ``add`` returns False when the row would push the file past ``max_bytes`` (start a new file).
    """

    def __init__(self, columns: Sequence[str], max_bytes: int = MAX_GZIP_BYTES) -> None:
        problems = column_problems(columns)
        if problems:
            raise ValueError("BDIA columns: " + "; ".join(problems))
        self.columns = tuple(columns)
        self.max_bytes = max_bytes
        self._buffer = io.BytesIO()
        self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", mtime=0)
        self._gzip.write(_csv_line(self.columns).encode("utf-8"))
        self._last_seen: dict[str, int] = {}
        self._raw = 0
        self.rows = 0

    def add(self, row: Mapping[str, str]) -> bool:
        visitor = _visitor(row)
        if not visitor:
            raise ValueError("BDIA row without a visitor id")
        stamp = parse_timestamp(str(_value(row, "timestamp")))
        if stamp is None:
            raise ValueError(f"BDIA row for {visitor}: timestamp must be epoch seconds or ISO-8601")
        if stamp < self._last_seen.get(visitor, stamp):
            raise ValueError(f"BDIA rows for visitor {visitor} are not in time order")
        line = _csv_line([str(row.get(c, "")) for c in self.columns]).encode("utf-8")
        # Compressed size is only known after flushing; bound it by the raw size, which can
        # only overestimate (gzip never grows CSV text meaningfully).
        if self.rows and (self._raw + len(line) > min(self.max_bytes, MAX_RAW_BYTES)):
            return False
        self._gzip.write(line)
        self._last_seen[visitor] = stamp
        self._raw += len(line)
        self.rows += 1
        return True

    def finish(self) -> bytes:
        self._gzip.close()
        return self._buffer.getvalue()


def write_files(
    columns: Sequence[str], rows: Iterable[Mapping[str, str]], max_bytes: int = MAX_GZIP_BYTES
) -> list[bytes]:
    files: list[bytes] = []
    writer = BdiaFileWriter(columns, max_bytes)
    for row in rows:
        if not writer.add(row):
            files.append(writer.finish())
            writer = BdiaFileWriter(columns, max_bytes)
            writer.add(row)
    if writer.rows:
        files.append(writer.finish())
    return files


def _decoded(data: bytes) -> str | list[str]:
    if len(data) > MAX_GZIP_BYTES:
        return [f"file is {len(data)} bytes gzip; the limit is {MAX_GZIP_BYTES}"]
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError):
        return ["not a gzip file"]
    if len(raw) > MAX_RAW_BYTES:
        return [f"file is {len(raw)} bytes uncompressed; the limit is {MAX_RAW_BYTES}"]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8 text"]


def _trailing_comma_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if line.endswith(",")]


def _row_problems(row: Mapping[str, str], line: int, last: dict[str, int]) -> list[str]:
    found = []
    visitor = _visitor(row)
    if not visitor:
        found.append(f"line {line}: no visitor id")
    raw = _value(row, "timestamp")
    stamp = parse_timestamp(raw)
    if stamp is None:
        found.append(f"line {line}: timestamp {raw!r} is neither epoch seconds nor ISO-8601")
    if not _value(row, "reportsuiteid"):
        found.append(f"line {line}: empty reportSuiteID")
    if not _value(row, "useragent"):
        found.append(f"line {line}: empty userAgent")
    if visitor and stamp is not None:
        if stamp < last.get(visitor, stamp):
            found.append(f"line {line}: rows of visitor {visitor} are not in time order")
        last[visitor] = stamp
    return found


def file_problems(data: bytes, limit: int = 20) -> list[str]:
    """Local check of a BDIA file: gzip, columns, no trailing commas, visitor ids, timestamps,
    per-visitor time order (the rules of file-format.md)."""
    text = _decoded(data)
    if isinstance(text, list):
        return text
    found = [f"line {n}: trailing comma" for n in _trailing_comma_lines(text)][:limit]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    found += column_problems(reader.fieldnames or [])
    if found:
        return found[:limit]
    last: dict[str, int] = {}
    rows = 0
    for row in reader:
        rows += 1
        if None in row:
            found.append(f"line {reader.line_num}: more fields than the header")
        found += _row_problems(row, reader.line_num, last)
        if len(found) >= limit:
            return found[:limit]
    if rows == 0:
        found.append("no data rows")
    return found


class Pacer:
    """At most one request per ``interval`` overall and per ``group_interval`` per visitor group.

    Spacing is measured from the end of the previous call, so however long a request takes to
    reach Adobe, the server never sees two closer together than the rule allows.
    """

    def __init__(
        self,
        interval: float = 1.0,
        group_interval: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self.group_interval = group_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_any = float("-inf")
        self._last_group: dict[str, float] = {}

    @contextmanager
    def slot(self, group: str | None = None) -> Iterator[None]:
        """Hold the pace for one request: waits for its turn, marks the time when it ends."""
        with self._lock:  # one request at a time, as Adobe wants uploads within a group
            ready = self._last_any + self.interval
            if group is not None:
                ready = max(ready, self._last_group.get(group, float("-inf")) + self.group_interval)
            delay = max(0.0, ready - self._clock())
            if delay:
                self._sleep(delay)
            try:
                yield
            finally:
                end = self._clock()
                self._last_any = end
                if group is not None:
                    self._last_group[group] = end


class BdiaClient:
    def __init__(self, session: AdobeSession, pacer: Pacer | None = None) -> None:
        self.session = session
        self.pacer = pacer or Pacer()

    def _url(self, suffix: str = "") -> str:
        return f"{self.session.endpoints.bdia}{EVENTS_PATH}{suffix}"

    def validate(self, data: bytes, visitor_group: str = "validate") -> dict[str, Any]:
        """Adobe's own check of a file; ingests nothing."""
        with self.pacer.slot():
            response = self.session.request(
                SERVICE,
                "POST",
                self._url("/validate"),
                idempotent=True,  # nothing is ingested, re-sending is harmless
                headers={"x-adobe-vgid": visitor_group},
                files={"file": ("events.csv.gz", data, "application/gzip")},
            )
        body: dict[str, Any] = json_body(SERVICE, response)
        return body

    def key_status(self, key: str) -> dict[str, Any] | None:
        """What Adobe knows of an upload by idempotency key; None if it never arrived.

        endpoints.md: a key Adobe never received is answered ``{"error": "File not found"}``
        (whatever the HTTP status); any other error body is an error, never a success.
        """
        try:
            with self.pacer.slot():
                response = self.session.request(
                    SERVICE, "GET", self._url(f"/key/{quote(key, safe='')}"), idempotent=True
                )
        except AdobeApiError as exc:
            if NOT_FOUND in (exc.code, exc.detail):
                return None
            raise
        body = json_body(SERVICE, response)
        if isinstance(body, dict) and body.get("error") == NOT_FOUND:
            return None
        if (
            not isinstance(body, dict)
            or body.get("error")
            or not (body.get("file_id") or body.get("idempotency_key"))
        ):
            raise AdobeApiError(
                SERVICE,
                f"key lookup answered without a file: {str(body)[:200]}",
                status=response.status_code,
                operation="GET /aa/collect/v1/events/key",
            )
        return body

    def upload_once(self, data: bytes, visitor_group: str, idempotency_key: str) -> dict[str, Any]:
        """One POST (permanent ingestion); OutcomeUnknownError when the answer was lost."""
        if len(data) > MAX_GZIP_BYTES:
            raise AdobeApiError(SERVICE, f"file is {len(data)} bytes; limit {MAX_GZIP_BYTES}")
        if not visitor_group or not idempotency_key:
            raise ValueError("BDIA uploads need a visitor group and an idempotency key")
        with self.pacer.slot(visitor_group):
            response = self.session.request(
                SERVICE,
                "POST",
                self._url(),
                idempotent=False,
                headers={
                    "x-adobe-vgid": visitor_group,
                    "x-adobe-idempotency-key": idempotency_key,
                },
                files={"file": (f"{idempotency_key}.csv.gz", data, "application/gzip")},
            )
        body: dict[str, Any] = json_body(SERVICE, response)
        return body

    def upload(self, data: bytes, visitor_group: str, idempotency_key: str) -> dict[str, Any]:
        """Ingest one file (permanently). Re-sent only when the key shows it never arrived."""
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                return self.upload_once(data, visitor_group, idempotency_key)
            except OutcomeUnknownError:
                known = self.key_status(idempotency_key)
                if known is not None:
                    return known
                if attempt == UPLOAD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
