"""Bulk Data Insertion API: gzip CSV files of server-side hits, validation, paced uploads.

Data sent here is permanent. Each upload carries a visitor group (``x-adobe-vgid``) and an
idempotency key (``x-adobe-idempotency-key``); a lost answer is resolved by asking for the key
before sending again. Adobe allows about one request a second overall and one every 20 s per
visitor group.
"""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from feedsync.adobe.errors import AdobeApiError, json_body
from feedsync.adobe.session import AdobeSession
from feedsync.errors import OutcomeUnknownError

SERVICE = "Adobe Bulk Data Insertion"
EVENTS_PATH = "/aa/collect/v1/events"
MAX_GZIP_BYTES = 100 * 1024 * 1024
VISITOR_ID_COLUMNS = ("marketingCloudVisitorID", "visitorID")
REQUIRED_COLUMNS = ("timestamp", "reportSuiteID", "userAgent")
PAGE_COLUMNS = ("pageName", "pageURL")
UPLOAD_ATTEMPTS = 3


def _is_customer_id(column: str) -> bool:
    return column.startswith("customerID.") and column.endswith(".id")


def column_problems(columns: Sequence[str]) -> list[str]:
    found = [f"missing column {c}" for c in REQUIRED_COLUMNS if c not in columns]
    if not any(c in VISITOR_ID_COLUMNS or _is_customer_id(c) for c in columns):
        found.append("no visitor id column (marketingCloudVisitorID, visitorID or customerID.*.id)")
    has_link = "linkType" in columns and "linkName" in columns
    if not has_link and not any(c in columns for c in PAGE_COLUMNS):
        found.append("needs pageName or pageURL, or linkType and linkName")
    return found


def _visitor(row: Mapping[str, str]) -> str:
    for column in VISITOR_ID_COLUMNS:
        if row.get(column):
            return row[column]
    for key, value in row.items():
        if _is_customer_id(key) and value:
            return value
    return ""


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
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._csv.writerow(self.columns)
        self._last_seen: dict[str, int] = {}
        self._raw = 0
        self.rows = 0

    def add(self, row: Mapping[str, str]) -> bool:
        visitor = _visitor(row)
        if not visitor:
            raise ValueError("BDIA row without a visitor id")
        try:
            stamp = int(row["timestamp"])
        except (KeyError, ValueError):
            raise ValueError(f"BDIA row for {visitor}: timestamp must be epoch seconds") from None
        if stamp < self._last_seen.get(visitor, stamp):
            raise ValueError(f"BDIA rows for visitor {visitor} are not in time order")
        values = [str(row.get(c, "")) for c in self.columns]
        size = sum(len(v) for v in values) + len(values)
        # Compressed size is only known after flushing; bound it by the raw size, which can
        # only overestimate (gzip never grows CSV text meaningfully).
        if self.rows and self._raw + size > self.max_bytes:
            return False
        self._csv.writerow(values)
        self._last_seen[visitor] = stamp
        self._raw += size
        self.rows += 1
        return True

    def finish(self) -> bytes:
        self._text.flush()
        self._text.detach()
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


def file_problems(data: bytes, limit: int = 20) -> list[str]:
    """Local check of a BDIA file: gzip, columns, timestamps, per-visitor time order."""
    if len(data) > MAX_GZIP_BYTES:
        return [f"file is {len(data)} bytes gzip; the limit is {MAX_GZIP_BYTES}"]
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError):
        return ["not a gzip file"]
    except UnicodeDecodeError:
        return ["not UTF-8 text"]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    found = column_problems(reader.fieldnames or [])
    if found:
        return found
    last: dict[str, int] = {}
    rows = 0
    for row in reader:
        rows += 1
        line = reader.line_num
        visitor = _visitor(row)
        if not visitor:
            found.append(f"line {line}: no visitor id")
        try:
            stamp = int(row.get("timestamp") or "")
        except ValueError:
            found.append(f"line {line}: timestamp {row.get('timestamp')!r} is not epoch seconds")
            stamp = None
        if not row.get("reportSuiteID"):
            found.append(f"line {line}: empty reportSuiteID")
        if visitor and stamp is not None:
            if stamp < last.get(visitor, stamp):
                found.append(f"line {line}: rows of visitor {visitor} are not in time order")
            last[visitor] = stamp
        if len(found) >= limit:
            break
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
        """What Adobe knows of an upload by idempotency key; None if it never arrived."""
        try:
            with self.pacer.slot():
                response = self.session.request(
                    SERVICE, "GET", self._url(f"/key/{key}"), idempotent=True
                )
        except AdobeApiError as exc:
            if exc.status == 404:
                return None
            raise
        body: dict[str, Any] = json_body(SERVICE, response)
        return body

    def upload(self, data: bytes, visitor_group: str, idempotency_key: str) -> dict[str, Any]:
        """Ingest one file (permanently). Re-sent only when the key shows it never arrived."""
        if len(data) > MAX_GZIP_BYTES:
            raise AdobeApiError(SERVICE, f"file is {len(data)} bytes; limit {MAX_GZIP_BYTES}")
        if not visitor_group or not idempotency_key:
            raise ValueError("BDIA uploads need a visitor group and an idempotency key")
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
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
            except OutcomeUnknownError:
                known = self.key_status(idempotency_key)
                if known is not None:
                    return known
                if attempt == UPLOAD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
