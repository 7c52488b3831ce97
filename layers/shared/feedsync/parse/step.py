"""The parse step: verify a delivery and find its pending visitors.

* A data file event parses that file and stores a per-file result.
* A manifest event (always delivered last) verifies every listed file against the manifest,
  parses any data file without a valid result (lost or late events, re-deliveries, results made
  with another column header), and writes the delivery record: ``complete`` with totals, or
  ``failed`` with the reasons.

Both are idempotent and order-independent: results are keyed by file name and digest, and a
re-run rewrites the same keys with the same content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO

from feedsync.datafeed.hitfile import (
    HitFileScan,
    scan_gzip_hits,
    scan_single_file_hits,
    single_file_headers,
)
from feedsync.datafeed.integrity import HashingReader
from feedsync.datafeed.lookup import read_column_headers
from feedsync.datafeed.manifest import Manifest, ManifestEntry, parse_manifest
from feedsync.datafeed.naming import Delivery, FeedFile, FileKind, parse_feed_name
from feedsync.datafeed.visitors import HitLayout
from feedsync.errors import FeedError, FeedNameError, IntegrityError
from feedsync.parse.results import (
    delivery_visitors,
    load_record,
    load_summary,
    pending_visitors,
    save_summary,
    write_visitor_keys,
)
from feedsync.settings import ParseSettings
from feedsync.state import todo
from feedsync.state.layout import StateLayout
from feedsync.state.records import (
    DeliveryRecord,
    FileCheck,
    FileResult,
    HitCounts,
    ObjectOutcome,
    Status,
)
from feedsync.storage import ObjectStore, put_json

ParseOutcome = FileResult | DeliveryRecord | ObjectOutcome
__all__ = [
    "ParseSettings",
    "load_record",
    "pending_visitors",
]  # re-exported: the CLI reads them here
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Headers:
    """A delivery's column header row and its digest (results record which one they used)."""

    names: list[str]
    md5: str

    @classmethod
    def of(cls, names: list[str]) -> Headers:
        return cls(names, hashlib.md5("\t".join(names).encode("utf-8")).hexdigest())


class DeliveryFailed(FeedError):
    """A delivery did not pass verification; ``record`` holds the stored delivery record."""

    def __init__(self, record: DeliveryRecord) -> None:
        super().__init__(record.delivery, "; ".join(record.reasons))
        self.record = record


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _open(feed: ObjectStore, key: str) -> BinaryIO:
    try:
        return feed.open(key)
    except FileNotFoundError:
        raise IntegrityError(
            posixpath.basename(key), "listed in the manifest but missing"
        ) from None


def handle_feed_object(
    feed: ObjectStore, state: ObjectStore, key: str, settings: ParseSettings
) -> ParseOutcome:
    """Entry point for one ObjectCreated event on the feed bucket."""
    folder, name = posixpath.split(key)
    folder = f"{folder}/" if folder else ""
    try:
        feed_file = parse_feed_name(name)
    except FeedNameError as exc:
        return ObjectOutcome(Status.IGNORED, exc.reason, key=key)
    settings = settings.for_rsid(feed_file.delivery.rsid)
    if feed_file.kind is FileKind.DATA:
        return parse_data_file(feed, state, folder, feed_file, settings)
    if feed_file.kind is FileKind.MANIFEST:
        return close_delivery(feed, state, folder, feed_file.delivery, settings)
    return ObjectOutcome(
        Status.IGNORED, "lookup and single-file archives are read when the manifest arrives", key
    )


def _layout(headers: list[str], settings: ParseSettings, source: str) -> HitLayout:
    return HitLayout.from_headers(headers, settings.visitor_columns, settings.crm_id_column, source)


def _store_scan(
    state: ObjectStore,
    key: str,
    name: str,
    scan: HitFileScan,
    settings: ParseSettings,
    header_md5: str,
) -> FileResult:
    tally = scan.tally
    pending, known = tally.pending_keys(), tally.known
    visitors_key = StateLayout.visitors(key, name, scan.md5)
    index = write_visitor_keys(state, visitors_key, pending, known)
    summary = FileResult(
        file=name,
        status=Status.PARSED,
        parsed_at=_now(),
        md5=scan.md5,
        size=scan.size,
        counts=HitCounts(
            tally.rows, tally.counted_rows, tally.excluded_rows, tally.rows_without_visitor
        ),
        visitors_pending=len(pending),
        visitors_known=len(known),
        visitors_key=visitors_key,
        visitor_columns=settings.visitor_columns,
        crm_id_column=settings.crm_id_column,
        filters=tuple(tally.layout.filters),
        header_md5=header_md5,
        visitors_index=tuple(index),
    )
    save_summary(state, key, summary)  # last: the summary commits the result
    logger.info(
        "data file parsed",
        extra={"delivery": key, "file": name, **summary.counts.to_json(),
               "visitors_pending": len(pending), "visitors_known": len(known)},
    )  # fmt: skip
    return summary


def _store_failure(state: ObjectStore, key: str, name: str, error: FeedError) -> FileResult:
    summary = FileResult(file=name, status=Status.FAILED, parsed_at=_now(), error=str(error))
    save_summary(state, key, summary)
    logger.error("data file %s of %s failed: %s", name, key, error,
                 extra={"delivery": key, "file": name, "error": str(error)})  # fmt: skip
    return summary


def _lookup_headers(feed: ObjectStore, folder: str, delivery: Delivery) -> Headers | ObjectOutcome:
    try:
        with feed.open(folder + delivery.lookup_name) as lookup:
            return Headers.of(read_column_headers(lookup, delivery.lookup_name))
    except FileNotFoundError:
        return ObjectOutcome(
            Status.DEFERRED,
            f"{delivery.lookup_name} has not arrived; the manifest step parses it",
            file="",
        )


def parse_data_file(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    feed_file: FeedFile,
    settings: ParseSettings,
    headers: Headers | None = None,
) -> FileResult | ObjectOutcome:
    """Parse one ``NN-rsid_day.tsv.gz`` and store its result (or its failure)."""
    delivery = feed_file.delivery
    key = StateLayout.delivery_key(folder, delivery.id)
    try:
        if headers is None:
            found = _lookup_headers(feed, folder, delivery)
            if isinstance(found, ObjectOutcome):
                return replace(found, file=feed_file.name)
            headers = found
        layout = _layout(headers.names, settings, delivery.lookup_name)
        with _open(feed, folder + feed_file.name) as stream:
            scan = scan_gzip_hits(stream, feed_file.name, layout)
    except FeedError as exc:
        return _store_failure(state, key, feed_file.name, exc)
    return _store_scan(state, key, feed_file.name, scan, settings, headers.md5)


def _result_is_valid(
    summary: FileResult | None,
    entry: ManifestEntry,
    settings: ParseSettings,
    headers: Headers | None,
) -> bool:
    return bool(
        summary
        and summary.parsed
        and summary.md5 == entry.md5
        and summary.size == entry.size
        and summary.visitor_columns == settings.visitor_columns
        and summary.crm_id_column == settings.crm_id_column
        # a re-delivered day may change the column layout: a result read with another header
        # row is stale even when the data file itself did not change
        and (headers is None or summary.header_md5 == headers.md5)
    )


def _verify_lookup(
    feed: ObjectStore, folder: str, entry: ManifestEntry
) -> tuple[Headers, FileCheck]:
    with _open(feed, folder + entry.name) as stream:
        reader = HashingReader(stream)
        headers = read_column_headers(reader, entry.name)
        reader.drain()
    check = FileCheck(
        entry.name, "lookup", md5_ok=reader.md5 == entry.md5, size_ok=reader.size == entry.size
    )
    return Headers.of(headers), check


def _file_reasons(check: FileCheck, entry: ManifestEntry) -> list[str]:
    reasons = []
    if not check.size_ok:
        reasons.append(f"{entry.name}: File-Size check failed (manifest {entry.size} bytes)")
    if not check.md5_ok:
        reasons.append(f"{entry.name}: MD5-Digest check failed (manifest {entry.md5})")
    if check.records_ok is False:
        reasons.append(
            f"{entry.name}: Record-Count check failed "
            f"(manifest {entry.records}, file {check.records})"
        )
    return reasons


def close_delivery(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    delivery: Delivery,
    settings: ParseSettings,
    progress: Callable[[str], None] | None = None,
) -> DeliveryRecord:
    """Verify the delivery against its manifest and write the delivery record; ``progress``
    hears one line per data file (the CLI shows it on a terminal)."""
    record = DeliveryRecord(
        delivery=delivery.id,
        rsid=delivery.rsid,
        day=delivery.day.isoformat(),
        hour=delivery.hour,
        folder=folder,
        manifest=delivery.manifest_name,
        visitor_columns=settings.visitor_columns,
        crm_id_column=settings.crm_id_column,
    )
    try:
        raw = feed.get(folder + delivery.manifest_name)
        if raw is None:
            raise IntegrityError(delivery.manifest_name, "the manifest is missing")
        manifest = parse_manifest(raw.decode("iso-8859-1"), delivery.manifest_name)
        record.total_records = manifest.total_records
        _verify_files(feed, state, delivery, manifest, settings, record, progress)
        record.warnings.extend(_unlisted_files(feed, folder, delivery, manifest))
    except FeedError as exc:
        record.reasons.append(str(exc))
    return _finish(state, record)


def check_columns(
    feed: ObjectStore, folder: str, delivery: Delivery, settings: ParseSettings
) -> None:
    """Raise FeedError when the settings' columns are not in the delivery's column headers
    (read from its first lookup archive) - before anything is written: a re-parse with a
    mistyped column must not turn a verified delivery into a failed one."""
    raw = feed.get(folder + delivery.manifest_name)
    if raw is None:
        raise IntegrityError(delivery.manifest_name, "the manifest is missing")
    manifest = parse_manifest(raw.decode("iso-8859-1"), delivery.manifest_name)
    for entry in manifest.lookup_files[:1]:
        headers, _ = _verify_lookup(feed, folder, entry)
        _layout(headers.names, settings.for_rsid(delivery.rsid), entry.name)


def _foreign_entries(manifest: Manifest, delivery: Delivery) -> list[str]:
    reasons = []
    for entry in manifest.files:
        try:
            belongs = parse_feed_name(entry.name).delivery == delivery
        except FeedNameError:
            belongs = False
        if not belongs:
            reasons.append(f"{entry.name}: listed in the manifest but not a file of {delivery.id}")
    return reasons


def _unlisted_files(
    feed: ObjectStore, folder: str, delivery: Delivery, manifest: Manifest
) -> list[str]:
    """Data files of this delivery in the folder that the manifest does not list."""
    listed = {e.name for e in manifest.files}
    out = []
    # data file names start with their index (NN-rsid_day), so no narrower prefix exists
    for key in feed.list(folder):
        name = key[len(folder) :]
        if "/" in name or name in listed:
            continue
        try:
            found = parse_feed_name(name)
        except FeedNameError:
            continue
        if found.delivery == delivery and found.kind in (FileKind.DATA, FileKind.SINGLE):
            out.append(f"{name}: in the feed folder but not listed in the manifest (not parsed)")
    return out


def _verify_files(
    feed: ObjectStore,
    state: ObjectStore,
    delivery: Delivery,
    manifest: Manifest,
    settings: ParseSettings,
    record: DeliveryRecord,
    progress: Callable[[str], None] | None = None,
) -> None:
    record.reasons.extend(_foreign_entries(manifest, delivery))
    if record.reasons:
        return
    headers: Headers | None = None
    for entry in manifest.lookup_files:
        try:
            found, check = _verify_lookup(feed, record.folder, entry)
        except FeedError as exc:
            record.reasons.append(str(exc))
            continue
        record.files.append(check)
        record.reasons.extend(_file_reasons(check, entry))
        headers = headers or found
    for number, entry in enumerate(manifest.data_files, start=1):
        if progress is not None:
            progress(f"{entry.name} ({number}/{len(manifest.data_files)}, {entry.size:,} bytes)")
        check = _check_data_file(feed, state, entry, headers, settings, record)
        if progress is not None:
            progress(f"{entry.name}: {check.counts.rows:,} rows")
        record.files.append(check)
        if check.error is not None:
            record.reasons.append(check.error)
        else:
            record.reasons.extend(_file_reasons(check, entry))


def _check_data_file(
    feed: ObjectStore,
    state: ObjectStore,
    entry: ManifestEntry,
    headers: Headers | None,
    settings: ParseSettings,
    record: DeliveryRecord,
) -> FileCheck:
    kind = parse_feed_name(entry.name).kind
    summary = load_summary(state, record.key, entry.name)
    expected = headers if kind is FileKind.DATA else None
    parsed_now = not _result_is_valid(summary, entry, settings, expected)
    if parsed_now or summary is None:
        summary = _parse_listed(feed, state, record.folder, entry, kind, headers, settings)
    if not summary.parsed:
        return FileCheck(entry.name, "data", error=summary.error)
    return FileCheck(
        name=entry.name,
        kind="data",
        md5_ok=summary.md5 == entry.md5,
        size_ok=summary.size == entry.size,
        records=summary.counts.rows,
        records_ok=summary.counts.rows == entry.records,
        parsed_now=parsed_now,
        filters=summary.filters,
        counts=summary.counts,
        visitors_key=summary.visitors_key,
        visitors_index=summary.visitors_index,
    )


def _parse_single(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    entry: ManifestEntry,
    settings: ParseSettings,
) -> FileResult:
    key = StateLayout.delivery_key(folder, parse_feed_name(entry.name).delivery.id)
    # Two passes: inside the archive, column_headers.tsv may come after hit_data.tsv.
    with _open(feed, folder + entry.name) as stream:
        names = single_file_headers(stream, entry.name)
    layout = _layout(names, settings, entry.name)
    with _open(feed, folder + entry.name) as stream:
        scan = scan_single_file_hits(stream, entry.name, layout)
    return _store_scan(state, key, entry.name, scan, settings, Headers.of(names).md5)


def _parse_listed(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    entry: ManifestEntry,
    kind: FileKind,
    headers: Headers | None,
    settings: ParseSettings,
) -> FileResult:
    feed_file = parse_feed_name(entry.name)
    key = StateLayout.delivery_key(folder, feed_file.delivery.id)
    try:
        if kind is FileKind.SINGLE:
            return _parse_single(feed, state, folder, entry, settings)
        if headers is None:
            raise IntegrityError(entry.name, "no readable lookup archive gives its column headers")
        result = parse_data_file(feed, state, folder, feed_file, settings, headers=headers)
        assert isinstance(result, FileResult)  # headers given: never deferred
        return result
    except FeedError as exc:
        return _store_failure(state, key, entry.name, exc)


def _finish(state: ObjectStore, record: DeliveryRecord) -> DeliveryRecord:
    record.counts = sum((f.counts for f in record.data_files), HitCounts())
    if record.reasons:
        record.status = Status.FAILED
        record.visitors_pending = record.visitors_known = None
    else:
        pending, known = _count_visitors(state, record)
        record.status = Status.COMPLETE
        record.visitors_pending, record.visitors_known = pending, known
    record.closed_at = _now()
    put_json(state, StateLayout.record(record.key), record.to_json())
    # after the record: the daily run finds it in the index of deliveries with work
    todo.mark(state, record.key, record.closed_at, "delivered")
    return record


def _count_visitors(state: ObjectStore, record: DeliveryRecord) -> tuple[int, int]:
    """Pending and known visitors of the whole delivery (a visitor known in any file is known)."""
    files = record.data_files
    if len(files) == 1:  # nothing to merge: the file's own result says it
        summary = load_summary(state, record.key, files[0].name)
        if summary is not None and summary.visitors_key == files[0].visitors_key:
            return summary.visitors_pending, summary.visitors_known
    pending = known = 0
    for _, is_known in delivery_visitors(state, record):
        known += is_known
        pending += not is_known
    return pending, known


def raise_for_status(record: DeliveryRecord) -> DeliveryRecord:
    if not record.complete:
        raise DeliveryFailed(record)
    return record
