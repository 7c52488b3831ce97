"""``feedsync backfill s3://BUCKET/PREFIX``: parse history already in the feed bucket, on the
BackfillStateMachine (Step Functions) or, with --local, in this process."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from typing import Any

from feedsync.cli import progress
from feedsync.cli.common import CliError, emit, required_env


def _day(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        from feedsync.settings import day_problem

        raise CliError(f"{flag} {value!r}: {day_problem(value)}") from None


def _target(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise CliError(f"{uri}: expected s3://BUCKET/PREFIX/")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def _local(bucket: str, prefix: str, since: Any, until: Any, workers: int) -> dict[str, Any]:
    import boto3

    from feedsync.aws.s3 import S3Store
    from feedsync.config import parse_settings
    from feedsync.parse.backfill import LocalBackfill

    s3 = boto3.client("s3")
    state = S3Store(s3, required_env("STATE_BUCKET", "the state bucket the parse step writes"))
    runner = LocalBackfill(
        S3Store(s3, bucket),
        state,
        parse_settings(os.environ),
        workers,
        on_progress=lambda p: progress.show(
            f"{p.phase}: {p.done[p.phase]:,} done, {p.failed[p.phase]:,} failed "
            f"of {p.listed:,} listed"
        ),
    )
    done = runner.run(prefix, since, until).to_json()
    progress.done()
    return done


def _step_functions(bucket: str, prefix: str, since: Any, until: Any) -> dict[str, Any]:
    import boto3

    from feedsync.aws.s3 import S3Store
    from feedsync.parse.backfill import Progress, record_progress, state_machine_input

    arn = required_env("BACKFILL_STATE_MACHINE_ARN", "the stack's BackfillStateMachineArn output")
    state = S3Store(boto3.client("s3"), required_env("STATE_BUCKET", "the state bucket"))
    started = boto3.client("stepfunctions").start_execution(
        stateMachineArn=arn, input=state_machine_input(bucket, prefix, since, until)
    )
    record = Progress(f"sfn-{time.strftime('%Y%m%dT%H%M%S')}", prefix,
                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), mode="step-functions",
                      execution_arn=started["executionArn"])  # fmt: skip
    record.since, record.until = (since and since.isoformat()), (until and until.isoformat())
    record_progress(state, record)
    return record.to_json()


def cmd_backfill(args: argparse.Namespace) -> int:
    bucket, prefix = _target(args.target)
    since, until = _day(args.since, "--from"), _day(args.until, "--to")
    if since and until and since > until:
        raise CliError(f"--from {since} is after --to {until}")
    if args.local:
        done = _local(bucket, prefix, since, until, args.workers)
        failed = done["failed"]
        # counted per phase: one broken delivery is a failed data file *and* a delivery that
        # could not close, never "2 failed"
        text = (
            f"backfill {done['id']}: {done['done']['data']:,} data files parsed"
            f" ({failed.get('data', 0):,} failed), {done['done']['manifest']:,} deliveries "
            f"closed ({failed.get('manifest', 0):,} failed)"
        )
        errors = done["errors"]
        for error in errors[:20]:
            print(f"feedsync: {error}", file=sys.stderr)
        if len(errors) > 20:
            print(f"feedsync: ... and {len(errors) - 20} more (--json lists them all)",
                  file=sys.stderr)  # fmt: skip
        emit(done, args.json, text)
        return 1 if any(failed.values()) else 0
    started = _step_functions(bucket, prefix, since, until)
    emit(started, args.json, f"started {started['execution_arn']} (feedsync status shows progress)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    back = sub.add_parser(
        "backfill",
        help="parse feed history already in the bucket (Step Functions, or --local)",
        description="Every data file, then every manifest, under the prefix - the same work the "
        "S3 trigger does, so results are identical and a re-run changes nothing.",
    )
    back.add_argument("target", metavar="s3://BUCKET/PREFIX/")
    back.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first delivery day")
    back.add_argument("--to", dest="until", metavar="YYYY-MM-DD", help="last delivery day")
    back.add_argument("--local", action="store_true", help="run here (a thread pool), not in AWS")
    back.add_argument("--workers", type=int, default=8, help="threads for --local (8)")
    back.add_argument("--json", action="store_true")
    back.set_defaults(func=cmd_backfill)
