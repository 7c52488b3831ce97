"""``feedsync parse``: the parse step on a local delivery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from feedsync.cli import progress
from feedsync.cli.common import CliError, required_env
from feedsync.config import check_roles, columns, parse_settings
from feedsync.datafeed import nativescan
from feedsync.datafeed.encoding import feed_bytes
from feedsync.datafeed.naming import FeedFile, FileKind, parse_feed_name
from feedsync.errors import FeedError, FeedNameError
from feedsync.parse.results import escape_id, pending_visitors
from feedsync.parse.step import close_delivery
from feedsync.settings import ParseSettings
from feedsync.state.records import DeliveryRecord
from feedsync.storage import LocalStore, MemoryStore, ObjectStore

PARSE_FIELDS = (
    "delivery",
    "complete",
    "rows",
    "counted_rows",
    "excluded_rows",
    "rows_without_visitor",
    "visitors_pending",
    "visitors_known",
)


def _find_manifest(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise CliError(f"{path}: no such delivery folder or manifest")
    manifests = []
    for child in sorted(path.iterdir()):
        try:
            if parse_feed_name(child.name).kind is FileKind.MANIFEST:
                manifests.append(child)
        except FeedNameError:
            continue
    if len(manifests) != 1:
        found = ", ".join(m.name for m in manifests) or "none"
        raise CliError(
            f"{path}: expected exactly one manifest (rsid_YYYY-mm-dd.txt), found {found}"
        )
    return manifests[0]


def _settings(args: argparse.Namespace) -> ParseSettings:
    """The installation's parse settings (VISITOR_COLUMNS, CRM_ID_COLUMN, CRM_ID_COLUMNS, as
    the parse function reads them); a flag overrides its setting, with a note."""
    import os

    base = parse_settings(os.environ)
    visitor, crm_id = base.visitor_columns, base.crm_id_column
    if args.visitor_column:
        visitor = columns(",".join(args.visitor_column), "--visitor-column")
        _note_override("--visitor-column", "VISITOR_COLUMNS", ",".join(visitor))
    if args.crm_id_column:
        crm = columns(args.crm_id_column, "--crm-id-column")
        if len(crm) != 1:
            raise CliError("--crm-id-column: name exactly one column")
        crm_id = crm[0]
        _note_override("--crm-id-column", "CRM_ID_COLUMN", crm_id)
    check_roles(visitor, crm_id, "--visitor-column", "--crm-id-column")
    crm_ids = () if args.crm_id_column else base.crm_id_columns
    return ParseSettings(visitor_columns=visitor, crm_id_column=crm_id, crm_id_columns=crm_ids)


def _note_override(flag: str, setting: str, value: str) -> None:
    import os

    configured = os.environ.get(setting, "").strip()
    if configured and configured != value:
        print(f"feedsync: note: {flag} {value} overrides {setting}={configured}",
              file=sys.stderr)  # fmt: skip


def _guard_reparse(
    feed: ObjectStore, state: ObjectStore, folder: str, feed_file: FeedFile,
    settings: ParseSettings, force: bool,
) -> None:  # fmt: skip
    """A re-parse in the state bucket: the columns are checked against the feed before anything
    is written, and re-keying an enriched day (other visitor columns than it was parsed with,
    so every visitor a new id to the ledger) asks for --force."""
    from feedsync.parse.step import check_columns
    from feedsync.state.layout import StateLayout
    from feedsync.storage import get_json

    try:
        check_columns(feed, folder, feed_file.delivery, settings)
    except FeedError as exc:
        raise CliError(f"{exc}; nothing was written (check --visitor-column / --crm-id-column"
                       ", or VISITOR_COLUMNS / CRM_ID_COLUMN)") from None  # fmt: skip
    key = f"{folder}{feed_file.delivery.id}"
    before = get_json(state, StateLayout.record(key))
    if before is None or force:
        return
    was = DeliveryRecord.from_json(before)
    rsid_settings = settings.for_rsid(was.rsid)
    rekeyed = tuple(was.visitor_columns) != rsid_settings.visitor_columns or (
        was.crm_id_column != rsid_settings.crm_id_column
    )
    if rekeyed and (
        state.exists(StateLayout.enriched(key)) or state.exists(StateLayout.report(key))
    ):
        raise CliError(
            f"{key} was parsed with visitor columns {','.join(was.visitor_columns)} and CRM id "
            f"column {was.crm_id_column} and has been enriched: parsing it with "
            f"{','.join(rsid_settings.visitor_columns)} / {rsid_settings.crm_id_column} re-keys "
            "its visitors (the ledger would not know any of them); pass --force to do it anyway"
        )


def _check_output(path: str | None) -> None:
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise CliError(f"--pending-out {path}: is a folder; name a file")
    if not target.parent.is_dir():
        raise CliError(f"--pending-out {path}: the folder {target.parent} does not exist")


def _announce_scanner() -> None:
    global _ANNOUNCED
    if not nativescan.available() and not _ANNOUNCED:
        _ANNOUNCED = True
        print(
            f"feedsync: {nativescan.why_unavailable()}; running the slower Python scanner "
            "(same results, several times slower)",
            file=sys.stderr,
        )


_ANNOUNCED = False


def _local(path: Path) -> tuple[ObjectStore, ObjectStore | None, str, FeedFile]:
    manifest = _find_manifest(path)
    try:
        feed_file = parse_feed_name(manifest.name)
    except FeedNameError as exc:
        raise CliError(f"{manifest}: not a delivery manifest ({exc.reason})") from None
    if feed_file.kind is not FileKind.MANIFEST:
        raise CliError(f"{manifest}: not a manifest name (rsid_YYYY-mm-dd[-HHMMSS].txt)")
    return LocalStore(manifest.parent), None, "", feed_file


def _on_s3(uri: str) -> tuple[ObjectStore, ObjectStore | None, str, FeedFile]:
    """``s3://BUCKET/PREFIX/MANIFEST.txt``: read the feed bucket, write STATE_BUCKET as the
    function does."""
    import boto3

    from feedsync.aws.s3 import S3Store

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    folder, _, name = key.rpartition("/")
    try:
        feed_file = parse_feed_name(name)
    except FeedNameError as exc:
        raise CliError(f"{uri}: not a delivery manifest ({exc.reason})") from None
    if feed_file.kind is not FileKind.MANIFEST:
        raise CliError(f"{uri}: name the delivery's manifest (rsid_YYYY-mm-dd.txt)")
    state_bucket = required_env("STATE_BUCKET", "the state bucket the parse step writes")
    s3 = boto3.client("s3")
    prefix = f"{folder}/" if folder else ""
    feed = S3Store(s3, bucket)
    if not feed.exists(key):  # a typo must not leave a failed delivery record behind
        raise CliError(f"{uri}: no such manifest in the feed bucket; nothing was written")
    return feed, S3Store(s3, state_bucket), prefix, feed_file


def cmd_parse(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _check_output(args.pending_out)
    if str(args.path).startswith("s3://"):
        feed, state, folder, feed_file = _on_s3(str(args.path))
        assert state is not None
        _guard_reparse(feed, state, folder, feed_file, settings, args.force)
    else:
        feed, state, folder, feed_file = _local(Path(args.path))
    if state is None:
        state = MemoryStore() if args.state_dir is None else LocalStore(args.state_dir)
    _announce_scanner()
    record = close_delivery(feed, state, folder, feed_file.delivery, settings, progress.show)
    progress.done()
    _write_pending(args.pending_out, state, record)
    print(json.dumps(_summary(record), indent=2))
    for warning in record.warnings:
        print(f"feedsync: warning: {warning}", file=sys.stderr)
    if not record.complete:
        for reason in record.reasons:
            print(f"feedsync: {reason}", file=sys.stderr)
        return 1
    return 0


def _summary(record: DeliveryRecord) -> dict[str, Any]:
    stored = record.to_json()
    out: dict[str, Any] = {key: stored.get(key) for key in PARSE_FIELDS}
    out["files"] = [
        {k: f.get(k) for k in ("name", "md5_ok", "size_ok", "records", "records_ok", "error")}
        for f in stored["files"]
    ]
    out["reasons"] = record.reasons
    out["empty"] = record.empty
    out["warnings"] = record.warnings
    return out


def _write_pending(path: str | None, state: ObjectStore, record: DeliveryRecord) -> None:
    if not path or not record.complete:
        return
    # the feed's bytes, escaped (\\, \t, \n): one id per line (datafeed.encoding)
    with open(path, "wb") as handle:
        for visitor in pending_visitors(state, record, encoding=None):
            handle.write(feed_bytes(escape_id(visitor)) + b"\n")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parse = sub.add_parser(
        "parse",
        help="verify a local delivery and count its pending visitors",
        description="Do what the parse step does, on a local delivery folder or its manifest, "
        "and print one JSON object.",
    )
    parse.add_argument(
        "path",
        help="delivery folder or its manifest (rsid_YYYY-mm-dd.txt), or "
        "s3://BUCKET/PREFIX/rsid_YYYY-mm-dd.txt to parse in S3 as the function does "
        "(writes STATE_BUCKET)",
    )
    parse.add_argument(
        "--visitor-column",
        action="append",
        metavar="COL",
        help="visitor key column; repeat for a composite key (default: VISITOR_COLUMNS, or "
        "mcvisid)",
    )
    parse.add_argument(
        "--crm-id-column", metavar="COL", help="the CRM id column (default: CRM_ID_COLUMN, or "
        "post_evar22)",
    )  # fmt: skip
    parse.add_argument(
        "--force", action="store_true",
        help="s3://: re-parse an enriched day with other columns (re-keys its visitors)",
    )  # fmt: skip
    parse.add_argument("--json", action="store_true", help="the summary as JSON (the default)")
    parse.add_argument("--pending-out", metavar="FILE", help="write pending ids, one per line")
    parse.add_argument(
        "--state-dir", metavar="DIR", help="keep per-file results here (default: in memory)"
    )
    parse.set_defaults(func=cmd_parse)
