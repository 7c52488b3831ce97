"""The parse step: verify a delivery and find its pending visitors.

* A data file event parses that file and stores a per-file result.
* A manifest event (always delivered last) verifies every listed file against the manifest,
  parses any data file without a valid result (lost or late events, re-deliveries), and writes
  the delivery record: ``complete`` with totals, or ``failed`` with the reasons.

Both are idempotent and order-independent: results are keyed by file name and digest, and a
re-run rewrites the same keys with the same content.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

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
from feedsync.pipeline.results import (
    DeliveryKeys,
    load_summary,
    merge_visitors,
    read_visitors,
    save_summary,
    write_visitors,
)
from feedsync.storage import ObjectStore, put_json

COUNTS = ("rows", "counted_rows", "excluded_rows", "rows_without_visitor")


@dataclass(frozen=True)
class ParseSettings:
    visitor_columns: tuple[str, ...] = ("mcvisid",)
    crm_id_column: str = "post_evar22"


class DeliveryFailed(FeedError):
    """A delivery did not pass verification; ``record`` holds the stored delivery record."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["delivery"], "; ".join(record["reasons"]))
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
) -> dict[str, Any]:
    """Entry point for one ObjectCreated event on the feed bucket."""
    folder, name = posixpath.split(key)
    folder = f"{folder}/" if folder else ""
    try:
        feed_file = parse_feed_name(name)
    except FeedNameError as exc:
        return {"status": "ignored", "key": key, "reason": exc.reason}
    if feed_file.kind is FileKind.DATA:
        return parse_data_file(feed, state, folder, feed_file, settings)
    if feed_file.kind is FileKind.MANIFEST:
        return close_delivery(feed, state, folder, feed_file.delivery, settings)
    return {
        "status": "ignored",
        "key": key,
        "reason": "lookup and single-file archives are read when the manifest arrives",
    }


def _layout(headers: list[str], settings: ParseSettings, source: str) -> HitLayout:
    return HitLayout.from_headers(headers, settings.visitor_columns, settings.crm_id_column, source)


def _store_scan(
    state: ObjectStore, keys: DeliveryKeys, name: str, scan: HitFileScan, settings: ParseSettings
) -> dict[str, Any]:
    tally = scan.tally
    pending, known = tally.pending_ids(), tally.known_ids()
    visitors_key = keys.visitors(name, scan.md5)
    write_visitors(state, visitors_key, pending, known)
    summary = {
        "file": name,
        "status": "parsed",
        "md5": scan.md5,
        "size": scan.size,
        "records": tally.rows,
        "rows": tally.rows,
        "counted_rows": tally.counted_rows,
        "excluded_rows": tally.excluded_rows,
        "rows_without_visitor": tally.rows_without_visitor,
        "visitors_pending": len(pending),
        "visitors_known": len(known),
        "visitors_key": visitors_key,
        "visitor_columns": list(settings.visitor_columns),
        "crm_id_column": settings.crm_id_column,
        "filters": tally.layout.filters,
        "parsed_at": _now(),
    }
    save_summary(state, keys, summary)  # last: the summary commits the result
    return summary


def _store_failure(
    state: ObjectStore, keys: DeliveryKeys, name: str, error: FeedError
) -> dict[str, Any]:
    summary = {"file": name, "status": "failed", "error": str(error), "parsed_at": _now()}
    save_summary(state, keys, summary)
    return summary


def parse_data_file(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    feed_file: FeedFile,
    settings: ParseSettings,
    headers: list[str] | None = None,
) -> dict[str, Any]:
    """Parse one ``NN-rsid_day.tsv.gz`` and store its result (or its failure)."""
    delivery = feed_file.delivery
    keys = DeliveryKeys(folder, delivery.id)
    if headers is None:
        try:
            with feed.open(folder + delivery.lookup_name) as lookup:
                headers = read_column_headers(lookup, delivery.lookup_name)
        except FileNotFoundError:
            return {
                "status": "deferred",
                "file": feed_file.name,
                "reason": f"{delivery.lookup_name} has not arrived; the manifest step parses it",
            }
        except FeedError as exc:
            return _store_failure(state, keys, feed_file.name, exc)
    try:
        layout = _layout(headers, settings, delivery.lookup_name)
        with _open(feed, folder + feed_file.name) as stream:
            scan = scan_gzip_hits(stream, feed_file.name, layout)
    except FeedError as exc:
        return _store_failure(state, keys, feed_file.name, exc)
    return _store_scan(state, keys, feed_file.name, scan, settings)


def _result_is_valid(
    summary: dict[str, Any] | None, entry: ManifestEntry, settings: ParseSettings
) -> bool:
    return bool(
        summary
        and summary.get("status") == "parsed"
        and summary.get("md5") == entry.md5
        and summary.get("size") == entry.size
        and summary.get("visitor_columns") == list(settings.visitor_columns)
        and summary.get("crm_id_column") == settings.crm_id_column
    )


def _verify_lookup(
    feed: ObjectStore, folder: str, entry: ManifestEntry
) -> tuple[list[str] | None, dict[str, Any]]:
    with _open(feed, folder + entry.name) as stream:
        reader = HashingReader(stream)
        headers = read_column_headers(reader, entry.name)
        reader.drain()
    check = {
        "name": entry.name,
        "kind": "lookup",
        "md5_ok": reader.md5 == entry.md5,
        "size_ok": reader.size == entry.size,
        "records": None,
        "records_ok": None,
    }
    return headers, check


def _file_reasons(check: dict[str, Any], entry: ManifestEntry) -> list[str]:
    reasons = []
    if not check["size_ok"]:
        reasons.append(f"{entry.name}: File-Size check failed (manifest {entry.size} bytes)")
    if not check["md5_ok"]:
        reasons.append(f"{entry.name}: MD5-Digest check failed (manifest {entry.md5})")
    if check["records_ok"] is False:
        reasons.append(
            f"{entry.name}: Record-Count check failed "
            f"(manifest {entry.records}, file {check['records']})"
        )
    return reasons


def close_delivery(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    delivery: Delivery,
    settings: ParseSettings,
) -> dict[str, Any]:
    """Verify the delivery against its manifest and write the delivery record."""
    keys = DeliveryKeys(folder, delivery.id)
    record: dict[str, Any] = {
        "delivery": delivery.id,
        "rsid": delivery.rsid,
        "day": delivery.day.isoformat(),
        "hour": delivery.hour,
        "folder": folder,
        "manifest": delivery.manifest_name,
        "visitor_columns": list(settings.visitor_columns),
        "crm_id_column": settings.crm_id_column,
        "files": [],
        "reasons": [],
    }
    try:
        raw = feed.get(folder + delivery.manifest_name)
        if raw is None:
            raise IntegrityError(delivery.manifest_name, "the manifest is missing")
        manifest = parse_manifest(raw.decode("iso-8859-1"), delivery.manifest_name)
        record["total_records"] = manifest.total_records
        _verify_files(feed, state, folder, delivery, manifest, settings, keys, record)
    except FeedError as exc:
        record["reasons"].append(str(exc))
    return _finish(state, keys, record)


def _verify_files(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    delivery: Delivery,
    manifest: Manifest,
    settings: ParseSettings,
    keys: DeliveryKeys,
    record: dict[str, Any],
) -> None:
    reasons: list[str] = record["reasons"]
    for entry in manifest.files:
        try:
            belongs = parse_feed_name(entry.name).delivery == delivery
        except FeedNameError:
            belongs = False
        if not belongs:
            reasons.append(f"{entry.name}: listed in the manifest but not a file of {delivery.id}")
    if reasons:
        return

    headers: list[str] | None = None
    for entry in manifest.lookup_files:
        try:
            found, check = _verify_lookup(feed, folder, entry)
        except FeedError as exc:
            reasons.append(str(exc))
            continue
        record["files"].append(check)
        reasons.extend(_file_reasons(check, entry))
        headers = headers or found

    for entry in manifest.data_files:
        kind = parse_feed_name(entry.name).kind
        summary = load_summary(state, keys, entry.name)
        parsed_now = not _result_is_valid(summary, entry, settings)
        if parsed_now:
            summary = _parse_listed(feed, state, folder, entry, kind, headers, settings, keys)
        assert summary is not None
        if summary["status"] != "parsed":
            reasons.append(summary["error"])
            record["files"].append({"name": entry.name, "kind": "data", "error": summary["error"]})
            continue
        check = {
            "name": entry.name,
            "kind": "data",
            "md5_ok": summary["md5"] == entry.md5,
            "size_ok": summary["size"] == entry.size,
            "records": summary["records"],
            "records_ok": summary["records"] == entry.records,
            "parsed_now": parsed_now,
            "filters": summary["filters"],
        }
        for count in COUNTS:
            check[count] = summary[count]
        check["visitors_key"] = summary["visitors_key"]
        record["files"].append(check)
        reasons.extend(_file_reasons(check, entry))


def _parse_listed(
    feed: ObjectStore,
    state: ObjectStore,
    folder: str,
    entry: ManifestEntry,
    kind: FileKind,
    headers: list[str] | None,
    settings: ParseSettings,
    keys: DeliveryKeys,
) -> dict[str, Any]:
    try:
        if kind is FileKind.SINGLE:
            # Two passes: inside the archive, column_headers.tsv may come after hit_data.tsv.
            with _open(feed, folder + entry.name) as stream:
                single_headers = single_file_headers(stream, entry.name)
            layout = _layout(single_headers, settings, entry.name)
            with _open(feed, folder + entry.name) as stream:
                scan = scan_single_file_hits(stream, entry.name, layout)
            return _store_scan(state, keys, entry.name, scan, settings)
        if headers is None:
            raise IntegrityError(entry.name, "no readable lookup archive gives its column headers")
        return parse_data_file(
            feed, state, folder, parse_feed_name(entry.name), settings, headers=headers
        )
    except FeedError as exc:
        return _store_failure(state, keys, entry.name, exc)


def _delivery_visitors(state: ObjectStore, record: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    streams = [
        read_visitors(state, f["visitors_key"]) for f in record["files"] if f["kind"] == "data"
    ]
    return merge_visitors(streams)


def _finish(state: ObjectStore, keys: DeliveryKeys, record: dict[str, Any]) -> dict[str, Any]:
    data_files = [f for f in record["files"] if f["kind"] == "data" and "error" not in f]
    for count in COUNTS:
        record[count] = sum(f[count] for f in data_files)
    if record["reasons"]:
        record["status"], record["complete"] = "failed", False
        record["visitors_pending"] = record["visitors_known"] = None
    else:
        pending = known = 0
        for _, is_known in _delivery_visitors(state, record):
            known += is_known
            pending += not is_known
        record["status"], record["complete"] = "complete", True
        record["visitors_pending"], record["visitors_known"] = pending, known
    record["closed_at"] = _now()
    put_json(state, keys.record, record)
    return record


def pending_visitors(state: ObjectStore, record: dict[str, Any]) -> Iterator[str]:
    """The sorted pending visitor ids of a complete delivery, streamed."""
    if not record.get("complete"):
        raise ValueError(f"delivery {record['delivery']} is not complete")
    return (visitor for visitor, known in _delivery_visitors(state, record) if not known)


def raise_for_status(record: dict[str, Any]) -> dict[str, Any]:
    if not record.get("complete"):
        raise DeliveryFailed(record)
    return record
