"""``feedsync feeds status|resend``: Adobe's data feed requests beside the deliveries that
arrived, and asking Adobe to send a day again by hand."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

from feedsync.cli.common import CliError, analytics_client, emit, required_env
from feedsync.cli.status_cmds import table

LABELS = {
    "ok": "delivered, verified",
    "no_data": "no data (Adobe)",
    "pending": "pending",
    "corrupt": "FAILED verification",
    "missing": "MISSING",
    "adobe_error": "FAILED at Adobe",
    "unknown": "UNKNOWN Adobe state",
    "not_listed": "not listed by Adobe",
}


def _watch(days: int) -> Any:
    import boto3

    from feedsync.adobe.datafeeds import DataFeedClient
    from feedsync.aws.s3 import S3Store
    from feedsync.config import FeedHealthConfig
    from feedsync.errors import ConfigError
    from feedsync.feeds.watch import FeedWatch

    try:
        feeds = FeedHealthConfig.from_env(os.environ)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if not feeds.feed_ids:
        raise CliError(
            "DATA_FEED_IDS is not set: name each report suite's data feed, e.g. "
            "DATA_FEED_IDS=acmeprod=16756 (the stack's DataFeedIds parameter; --stack reads it)"
        )
    bucket = required_env("STATE_BUCKET", "the stack's StateBucketName output")
    state = S3Store(boto3.client("s3"), bucket)
    client = DataFeedClient(analytics_client())
    return FeedWatch(state, client, feeds.feed_ids, feeds.resend_max, days)


def _adobe_cell(row: dict[str, Any]) -> str:
    adobe = row.get("adobe")
    if not adobe:  # Adobe's job list has no request for this period (yet, or at all)
        return "not listed by Adobe"
    text = (
        f"{adobe['adobe_state'] or '?'} (request {adobe['request_id']}, run {adobe['run_count']})"
    )
    if adobe.get("error_code") or adobe.get("error_msg"):
        text += f": {adobe.get('error_code') or ''} {adobe.get('error_msg') or ''}".rstrip()
    return text


def _resend_cell(row: dict[str, Any]) -> str:
    resend = row.get("resend") or {}
    if not resend:
        return "-"
    last = resend.get("last") or {}
    done = f"{resend['count']}/{resend['cap']}"
    if last:
        done += f" ({last['action']} {last['outcome']} {last['at']})"
    nxt = resend.get("next", "")
    return f"{done}; next: {nxt}" if nxt and nxt != "nothing to resend" else done


def _text(look: dict[str, Any]) -> str:
    parts = []
    for rsid, suite in look["suites"].items():
        rows = [
            [r["period"], LABELS.get(r["verdict"], r["verdict"]), r["ours"], _adobe_cell(r),
             _resend_cell(r)]
            for r in suite["rows"]
        ]  # fmt: skip
        heading = f"{rsid} (feed {suite['feed_id']}): {suite['problems']} problem(s)"
        body = (
            table(["PERIOD", "VERDICT", "ARRIVED", "ADOBE", "RESENDS"], rows)
            if rows
            else ("Adobe lists no request and nothing arrived in these days")
        )
        parts.append(f"{heading}\n{body}")
    parts += [f"error: {e}" for e in look["errors"]]
    return "\n\n".join(parts)


def cmd_feeds_status(args: argparse.Namespace) -> int:
    watch = _watch(args.days)
    look = watch.look(dt.datetime.now(dt.UTC), act=False)
    emit(look, args.json, _text(look))
    problems = sum(s["problems"] for s in look["suites"].values())
    return 1 if problems or look["errors"] else 0


def cmd_feeds_resend(args: argparse.Namespace) -> int:
    from feedsync.datafeed.naming import parse_feed_name
    from feedsync.errors import FeedNameError
    from feedsync.feeds.resend import Resender

    name_part = args.delivery.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    try:
        delivery = parse_feed_name(name_part + ".txt").delivery
    except FeedNameError:
        raise CliError(
            f"{args.delivery!r} is not a delivery: give its key or id, e.g. acmeprod_2026-11-20"
        ) from None
    watch = _watch(max(1, (dt.date.today() - delivery.day).days + 1))
    if delivery.rsid not in watch.feed_ids:
        raise CliError(
            f"{delivery.rsid} has no data feed id: add {delivery.rsid}=<id> to DATA_FEED_IDS"
        )
    now = dt.datetime.now(dt.UTC)
    rows = watch.suite(delivery.rsid, watch.feed_ids[delivery.rsid], delivery.day, now)
    row = next(
        (r for r in rows if r.day == delivery.day.isoformat() and r.hour == delivery.hour), None
    )
    if row is None or row.request is None:
        raise CliError(
            f"Adobe lists no request of feed {watch.feed_ids[delivery.rsid]} for {delivery.id}"
        )
    resender = Resender(watch.state, None if args.dry_run else watch.client, watch.cap, now)
    decision = resender.consider(row, dry_run=args.dry_run, force=True)
    result = {"delivery": delivery.id, "request_id": row.request.request_id,
              "verdict": row.verdict, "action": decision.action, "why": decision.why,
              "dry_run": args.dry_run, "resend": row.resend}  # fmt: skip
    if decision.action is None:
        emit(result, args.json, f"{delivery.id}: nothing asked - {decision.why}")
        return 0
    verb = "would ask" if args.dry_run else "asked"
    last = (row.resend or {}).get("last") or {}
    action = decision.action if args.dry_run else last.get("action", decision.action)
    result["action"] = action
    outcome = "" if args.dry_run else f" ({last.get('outcome', '?')})"
    emit(result, args.json,
         f"{delivery.id}: {verb} Adobe to {action} request {row.request.request_id}"
         f"{outcome} - {LABELS.get(row.verdict, row.verdict)}")  # fmt: skip
    return 1 if last.get("outcome") == "refused" else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feeds = sub.add_parser(
        "feeds", help="Adobe's data feed requests beside what arrived; resend a bad day"
    ).add_subparsers(dest="feeds_command", required=True)
    status = feeds.add_parser(
        "status",
        help="per report suite and period: Adobe's request state and error beside ours",
        description="Reads DATA_FEED_IDS, STATE_BUCKET and the Adobe credentials (--stack reads "
        "them from a deployed stack). Exit 1 when a period is missing, corrupt, failed at "
        "Adobe or in an unknown state.",
    )
    status.add_argument("--days", type=int, default=7, help="how many days back (7)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_feeds_status)
    resend = feeds.add_parser(
        "resend",
        help="ask Adobe to send one delivery again (resend, or redo where a resend is not "
        "possible); refused while a resend is pending",
    )
    resend.add_argument("delivery", help="its key or id, e.g. acmeprod_2026-11-20")
    resend.add_argument("--dry-run", action="store_true", help="say what would be asked")
    resend.add_argument("--json", action="store_true")
    resend.set_defaults(func=cmd_feeds_resend)
