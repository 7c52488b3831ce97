"""Operator commands for the daily run: run-daily, marketo lookup, build-upload."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from feedsync.cli import progress
from feedsync.cli.common import CliError, emit, required_env
from feedsync.errors import ConfigError
from feedsync.secret import Secret


def _ports(args: argparse.Namespace, dry_run: bool) -> tuple[Any, Any, Any]:
    from feedsync.aws.clients import AwsClients
    from feedsync.config import EnrichFunctionConfig
    from feedsync.daily.lock import cli_owner
    from feedsync.deadline import Deadline
    from feedsync.wiring import build_ports, settings

    env = dict(os.environ)
    if getattr(args, "mapping", None):
        env["MAPPING_FILE"] = args.mapping
    config = EnrichFunctionConfig.from_env(env)
    clients = AwsClients.create(config.state_table)
    deadline = Deadline()  # a local run has no invocation limit: it runs to the end
    owner = cli_owner()  # a later --break-lock here takes over at once once this one is gone
    ports = build_ports(config, clients, deadline, dry_run or config.dry_run, owner=owner)
    return ports, settings(config), config


def _delivery_line(d: dict[str, Any], dry: bool) -> str:
    head = "dry run: " if dry else ""
    line = f"{head}{d['key']}: {d['status']}" + (f" - {d['error']}" if d.get("error") else "")
    if d.get("pending") is not None:
        at_adobe = "would send" if dry else "at Adobe"
        line += (
            f" (pending {d['pending']:,}, matched {d['matched']:,}, "
            f"{at_adobe} {d['uploaded_rows']:,}, rejected {d['rejected']:,})"
        )
    run = d.get("this_run")
    if run:
        sent = "rows built, nothing sent" if dry else "rows sent"
        files = "files written" if dry else "files sent"
        line += (
            f"; this run: {run['crm_calls']:,} CRM calls, {run['rows_sent']:,} {sent}, "
            f"{run['jobs_created']:,} {files}"
        )
    if d.get("outcome") and not dry:
        line += f"; Adobe: {d['outcome']}"
    return line


NOTHING = (
    "nothing to enrich: no verified delivery has work (a delivery is taken once it is "
    "parsed and verified - `feedsync parse` or the stack's parse function; `feedsync "
    "status` lists them)"
)


UNPARSED_LOOK = 5_000  # feed bucket keys read for the note below (a bounded look)


def unparsed_manifests(state: Any) -> list[str]:
    """With nothing to enrich: manifests in FEED_BUCKET (under FEED_PREFIX) whose delivery has
    no record in the state bucket - put there, never parsed (no EventBridge rule locally, a
    parse function that failed). Reads at most UNPARSED_LOOK keys."""
    import os
    import posixpath

    import boto3

    from feedsync.datafeed.naming import FileKind, parse_feed_name
    from feedsync.errors import FeedNameError
    from feedsync.state.layout import StateLayout

    bucket = os.environ.get("FEED_BUCKET", "").strip()
    if not bucket:
        return []
    prefix = os.environ.get("FEED_PREFIX", "").strip("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/" if prefix else "",
        PaginationConfig={"MaxItems": UNPARSED_LOOK},
    )  # fmt: skip
    found = []
    for item in (o for page in pages for o in page.get("Contents", [])):
        folder, name = posixpath.split(item["Key"])
        try:
            feed_file = parse_feed_name(name)
        except FeedNameError:
            continue
        key = StateLayout.delivery_key(f"{folder}/" if folder else "", feed_file.delivery.id)
        if feed_file.kind is FileKind.MANIFEST and not state.exists(StateLayout.record(key)):
            found.append(f"s3://{bucket}/{item['Key']}")
    return found


def local_shards(ports: Any, run_settings: Any, deadline: Any) -> Any:
    """A delivery's shards run in this process (daily/shards.py LocalShards)."""
    from feedsync.daily.run import enrich_delivery
    from feedsync.daily.shards import LocalShards

    def run_shard(key: str, shard: int) -> str:
        return str(enrich_delivery(ports, run_settings, key, deadline, shard=shard)["status"])

    return LocalShards(run_shard)


def cmd_run_daily(args: argparse.Namespace) -> int:
    from feedsync.daily.run import run_daily
    from feedsync.deadline import Deadline
    from feedsync.settings import RunRequest

    event: dict[str, Any] = {"dry_run": bool(args.dry_run), "break_lock": bool(args.break_lock)}
    if args.date:
        event["date"] = args.date
    if args.delivery:
        event["delivery"] = args.delivery
    RunRequest.from_event(event)  # a bad date is a usage error before any setting is read
    ports, run_settings, config = _ports(args, args.dry_run)
    ports.progress = progress.show
    request = RunRequest.from_event(event, dry_run_default=config.dry_run)
    if args.shards:  # the shards of a new walk, here in this process
        run_settings = dataclasses.replace(run_settings, shards=args.shards)
        ports.shards = local_shards(ports, run_settings, Deadline())
    summary = run_daily(ports, run_settings, request, Deadline())
    progress.done()
    if args.date and not summary["deliveries"] and not summary.get("ignored"):
        raise CliError(f"--date {args.date}: no delivery of that day in the state bucket "
                       "(`feedsync status --days N` lists them)")  # fmt: skip
    dry = bool(summary.get("dry_run"))
    lines = [_delivery_line(d, dry) for d in summary["deliveries"]]
    # never a silent stop: an allow-list that leaves deliveries out is said on stderr by the
    # run's own warning (the CLI's log line), whatever --json
    if summary.get("ignored") and not summary["deliveries"]:
        emit(summary, args.json, "nothing enriched: every delivery with work was ignored")
        return 2  # the allow-list is a setting: a usage/configuration error
    if not lines and not args.date and not args.delivery:
        unparsed = unparsed_manifests(ports.state)
        if unparsed:  # "nothing to enrich" with a delivery in the bucket would mislead
            print(f"feedsync: {len(unparsed)} deliveries in FEED_BUCKET were never parsed: "
                  f"`feedsync parse {unparsed[0]}`" + (" (and the others)" if
                  len(unparsed) > 1 else ""), file=sys.stderr)  # fmt: skip
    emit(summary, args.json, "\n".join(lines) or NOTHING)
    # a delivery skipped for failed verification fails this run; later runs no longer see it
    return 0 if all(d["status"] == "complete" for d in summary["deliveries"]) else 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    from feedsync.daily.run import reconcile

    ports, run_settings, _ = _ports(args, False)
    summary = reconcile(ports, run_settings).to_json()
    text = (
        f"checked {summary['checked']}: {summary['accepted']} accepted, {summary['failed']} "
        f"failed at Adobe ({summary['released']} visitors to send again, "
        f"{summary['given_up']} given up), {summary['pending']} pending, {summary['stuck']} stuck"
    )
    errors = summary["errors"]
    assert isinstance(errors, list)
    for error in errors:
        print(f"feedsync: {error}", file=sys.stderr)
    emit(summary, args.json, text)
    return 1 if summary["failed"] or summary["stuck"] or errors else 0


def _ids(values: list[str]) -> list[str]:
    ids = values or [line.strip() for line in sys.stdin if line.strip()]
    if not ids:
        raise CliError("give visitor ids as arguments or one per line on stdin")
    return ids


def cmd_marketo_lookup(args: argparse.Namespace) -> int:
    from feedsync.config import marketo_base_url
    from feedsync.crm.marketo import MarketoClient, MarketoSettings
    from feedsync.crm.ratelimit import Limits, LocalRateLimiter

    settings = MarketoSettings(
        marketo_base_url(
            required_env(
                "MARKETO_BASE_URL", "the instance's REST base, https://123-ABC-456.mktorest.com"
            )
        ),
        required_env("MARKETO_CLIENT_ID", "the LaunchPoint service's client id"),
        Secret(required_env("MARKETO_CLIENT_SECRET", "the LaunchPoint service's client secret")),
    )
    limits = Limits(calls=int(os.environ.get("MARKETO_CALLS_PER_20S", "50")))
    client = MarketoClient(settings, limiter=LocalRateLimiter(limits))
    fields = [f for f in (args.fields or "").split(",") if f] or ["id", "email"]
    found = client.lookup(args.field, _ids(args.ids), fields)
    for lead in found.values():
        print(json.dumps(lead, default=str))
    print(f"feedsync: {len(found)} matched, {client.stats.calls} Marketo calls", file=sys.stderr)
    return 0


def cmd_build_upload(args: argparse.Namespace) -> int:
    from feedsync.crm.sources import FileSource
    from feedsync.daily.destinations.uploadfile import build_datasource_files
    from feedsync.daily.lookup import map_records
    from feedsync.daily.mapping import Mapping

    def read(path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"{path}: {exc.strerror}") from None

    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        from feedsync.settings import day_problem

        raise CliError(f"--date {args.date!r}: {day_problem(args.date)} (the hit day)") from None
    target = Path(args.out)
    if target.is_dir():
        raise CliError(f"--out {args.out}: is a folder; name the file to write")
    if not target.parent.is_dir():
        raise CliError(f"--out {args.out}: the folder {target.parent} does not exist")
    mapping = Mapping.from_json(read(args.mapping), args.mapping)
    pending = [
        line.strip() for line in read(args.pending).decode("utf-8").splitlines() if line.strip()
    ]
    try:
        crm = FileSource(read(args.crm), args.crm, mapping.visitor_id_field, mapping.crm_fields)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    found = crm.lookup(pending)
    rows, rejected = map_records(pending, found, mapping)
    built = build_datasource_files(rows, mapping, day, comment=f"feedsync build-upload {day}")
    rejected += built.rejected
    out = Path(args.out)
    written = []
    for number, data in enumerate(built.parts, start=1):
        path = out if number == 1 else out.with_name(f"{out.stem}-part{number}{out.suffix}")
        path.write_bytes(data)
        written.append(str(path))
    result = {
        "pending": len(pending),
        "matched": len(found),  # CRM records found (rows + records a rule refused)
        "rows": built.rows,
        "rejected": [{"visitor": r.visitor, "reason": r.reason} for r in rejected],
        "files": written,
    }
    for r in rejected:
        print(f"feedsync: rejected {r.visitor}: {r.reason}", file=sys.stderr)
    emit(result, args.json, f"{built.rows} rows -> {', '.join(written) or 'no file (no rows)'}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run-daily",
        help="enrich complete deliveries and upload them (as EnrichUploadFunction does)",
        description="Runs the daily step against the configured AWS account (or AWS_ENDPOINT_URL) "
        "with the same settings as the function (STATE_BUCKET, STATE_TABLE, ...).",
    )
    which = run.add_mutually_exclusive_group()
    which.add_argument(
        "--date", metavar="YYYY-MM-DD", help="(re)run the deliveries of this hit day"
    )
    which.add_argument(
        "--delivery", metavar="KEY", help="(re)run one delivery, e.g. adobe/rsid/rsid_2026-11-20"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="write upload files and the report only"
    )
    run.add_argument(
        "--mapping",
        metavar="FILE",
        help="a local mapping file (default: MAPPING_KEY in the state bucket)",
    )
    run.add_argument(
        "--break-lock",
        action="store_true",
        help="take over a delivery's lock whose holder stopped renewing it (a killed run)",
    )
    run.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="N",
        help="cut each delivery walked from the start into N key ranges and run them here, one "
        "after the other (as the stack's DailyShards state machine runs them side by side)",
    )
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_run_daily)

    rec = sub.add_parser(
        "reconcile",
        help="read Adobe's verdict on every upload not yet final (as each run does first)",
        description="Checks every Data Sources job, BDIA file and Target batch sent and not yet "
        "final; a failure releases its visitors so the next run sends them again.",
    )
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_reconcile)

    marketo = sub.add_parser("marketo", help="Marketo").add_subparsers(
        dest="marketo_command", required=True
    )
    lookup = marketo.add_parser("lookup", help="leads whose FIELD is one of the ids (JSON Lines)")
    lookup.add_argument(
        "--field", required=True, help="the lead field holding the Adobe visitor id"
    )
    lookup.add_argument("--fields", metavar="F,...", help="lead fields to print (default id,email)")
    lookup.add_argument(
        "ids", nargs="*", metavar="ID", help="visitor ids (default: one per line on stdin)"
    )
    lookup.set_defaults(func=cmd_marketo_lookup)

    build = sub.add_parser("build-upload", help="write a data source file from local inputs")
    build.add_argument(
        "--pending", required=True, metavar="FILE", help="pending visitor ids, one per line"
    )
    build.add_argument(
        "--crm",
        required=True,
        metavar="FILE",
        help="CRM records, JSON Lines as Marketo returns them (or CSV)",
    )
    build.add_argument("--mapping", required=True, metavar="FILE")
    build.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the hit day")
    build.add_argument("--out", required=True, metavar="FILE")
    build.add_argument("--json", action="store_true")
    build.set_defaults(func=cmd_build_upload)
