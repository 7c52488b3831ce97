"""``feedsync parse``: the parse step on a local delivery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from feedsync.cli.common import CliError
from feedsync.config import columns
from feedsync.datafeed.naming import FileKind, parse_feed_name
from feedsync.errors import FeedNameError
from feedsync.pipeline.parse import ParseSettings, close_delivery, pending_visitors
from feedsync.pipeline.results import escape_id
from feedsync.storage import LocalStore, MemoryStore

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


def cmd_parse(args: argparse.Namespace) -> int:
    manifest = _find_manifest(Path(args.path))
    feed_file = parse_feed_name(manifest.name)
    if feed_file.kind is not FileKind.MANIFEST:
        raise CliError(f"{manifest}: not a manifest name (rsid_YYYY-mm-dd[-HHMMSS].txt)")
    settings = ParseSettings(
        visitor_columns=tuple(args.visitor_column or ("mcvisid",)),
        crm_id_column=args.crm_id_column,
    )
    columns(",".join(settings.visitor_columns), "--visitor-column")
    state = MemoryStore() if args.state_dir is None else LocalStore(args.state_dir)
    feed = LocalStore(manifest.parent)
    record = close_delivery(feed, state, "", feed_file.delivery, settings)
    stored = record.to_json()
    out: dict[str, Any] = {key: stored.get(key) for key in PARSE_FIELDS}
    out["files"] = [
        {k: f.get(k) for k in ("name", "md5_ok", "size_ok", "records", "records_ok", "error")}
        for f in stored["files"]
    ]
    out["reasons"] = record.reasons
    out["empty"] = record.empty
    out["warnings"] = record.warnings
    if args.pending_out and record.complete:
        with open(args.pending_out, "w", encoding="utf-8", newline="\n") as handle:
            for visitor in pending_visitors(state, record):
                handle.write(escape_id(visitor) + "\n")
    print(json.dumps(out, indent=2))
    for warning in record.warnings:
        print(f"feedsync: warning: {warning}", file=sys.stderr)
    if not record.complete:
        for reason in record.reasons:
            print(f"feedsync: {reason}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parse = sub.add_parser(
        "parse",
        help="verify a local delivery and count its pending visitors",
        description="Do what the parse step does, on a local delivery folder or its manifest, "
        "and print one JSON object.",
    )
    parse.add_argument("path", help="delivery folder or its manifest (rsid_YYYY-mm-dd.txt)")
    parse.add_argument(
        "--visitor-column",
        action="append",
        metavar="COL",
        help="visitor key column; repeat for a composite key (default: mcvisid)",
    )
    parse.add_argument("--crm-id-column", default="post_evar22", metavar="COL")
    parse.add_argument("--pending-out", metavar="FILE", help="write pending ids, one per line")
    parse.add_argument(
        "--state-dir", metavar="DIR", help="keep per-file results here (default: in memory)"
    )
    parse.set_defaults(func=cmd_parse)
