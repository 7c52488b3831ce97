"""``feedsync status`` and ``feedsync runs show``: the state the functions wrote, readable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from feedsync.cli.common import CliError, emit, required_env


def _stores(need_table: bool = False) -> tuple[Any, Any]:
    from feedsync.aws.clients import AwsClients
    from feedsync.aws.runstate import DynamoRunState
    from feedsync.aws.s3 import S3Store

    bucket = required_env("STATE_BUCKET", "the stack's StateBucketName output")
    table = required_env("STATE_TABLE", "the stack's StateTableName output") if need_table else "x"
    clients = AwsClients.create(table)
    return S3Store(clients.s3, bucket), DynamoRunState(clients.table) if need_table else None


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _runs_text(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no daily run yet"
    from feedsync.views.status import run_counts

    lines = []
    for run in runs:
        counts = run_counts(run)
        rec = run.get("reconciliation") or {}
        verdicts = (
            f"; Adobe: {rec.get('accepted', 0)} accepted, {rec.get('failed', 0)} failed"
            if rec.get("checked")
            else ""
        )
        more = " (continues)" if run["continued"] else ""
        lines.append(f"{run['finished_at']}  {counts}{verdicts}{more}")
    return "\n".join(lines)


def delivery_key(state: Any, text: str) -> str:
    """The key a person named: the key, deliveries/<key>.json, or the bare delivery id that
    parse, reports and `feeds resend` print (one still parsing: as written)."""
    from feedsync.daily.select import find_delivery
    from feedsync.errors import FeedsyncError
    from feedsync.state.layout import StateLayout

    try:
        return find_delivery(state, text)
    except FeedsyncError:
        return StateLayout.normalise_key(text)


def cmd_status(args: argparse.Namespace) -> int:
    import os

    from feedsync.config import report_suites
    from feedsync.views.status import status

    state, _ = _stores()
    suites = report_suites(os.environ)
    found = status(state, args.days, suites=suites, last_runs=args.runs)
    ignored = [d for d in found["deliveries"] if d["state"].startswith("ignored")]
    if ignored:  # never a silent stop
        print(f"feedsync: REPORT_SUITES={','.join(suites)} leaves out {len(ignored)} "
              f"deliveries here ({', '.join(sorted({d['rsid'] for d in ignored}))}): check its "
              "spelling, or add them", file=sys.stderr)  # fmt: skip
    rows = [
        [d["day"], d["rsid"], d["files"], d["rows"], d["pending"], d["matched"], d["state"],
         d["uploads"], d["key"]]
        for d in found["deliveries"]
    ]  # fmt: skip
    headers = ["DAY", "SUITE", "FILES", "ROWS", "PENDING", "MATCHED", "STATE", "UPLOADS"]
    text = table([*headers, "KEY (feedsync runs show KEY)"], rows)
    if not rows:
        from feedsync.views.status import newest_day

        newest = newest_day(state)
        text = f"no delivery in the last {args.days} days" + (
            f"; the newest is of {newest} (feedsync status --days N)" if newest else ""
        )
    for backfill in found["backfills"]:
        _step_functions_progress(backfill)
    if args.html or args.open:
        _page(state, found, args)
    emit(
        found,
        args.json,
        f"{text}\n\nlast runs:\n{_runs_text(found['runs'])}"
        + (f"\n\nbackfills:\n{_backfills_text(found['backfills'])}" if found["backfills"] else "")
        + _feeds_text(found.get("feeds")),
    )
    from feedsync.views.states import named

    needs_a_person = [d for d in found["deliveries"] if named(d["state"]).severity == "bad"]
    return 1 if needs_a_person else 0


def _feeds_text(feeds: dict[str, Any] | None) -> str:
    """Adobe's side, from the daily run's last look: the problems, and how many are fine."""
    if feeds is None:
        return ""
    from feedsync.feeds.health import PROBLEMS

    bad = [r for r in feeds["rows"] if r["verdict"] in PROBLEMS]
    others = len(feeds["rows"]) - len(bad)
    lines = [f"\n\ndata feeds at Adobe (read {feeds['checked_at']}): {len(bad)} problem(s), "
             f"{others} other period(s); feedsync feeds status for all"]  # fmt: skip
    for row in bad:
        adobe = row.get("adobe") or {}
        said = " ".join(str(adobe.get(k) or "") for k in ("adobe_state", "error_code", "error_msg"))
        resend = row.get("resend") or {}
        said = said.strip() or "no request listed"
        lines.append(f"  {row['period']} {row['rsid']}: {row['verdict']} (Adobe: {said}; "
                     f"resends {resend.get('count', 0)}/{resend.get('cap', '-')})")  # fmt: skip
    lines += [f"  error: {e}" for e in feeds.get("errors", [])]
    return "\n".join(lines)


def _page(state: Any, found: dict[str, Any], args: argparse.Namespace) -> None:
    """The status page with pre-signed links to the reports: to a file, or into the state
    bucket with a pre-signed link to it printed on stderr."""
    import datetime as dt

    from feedsync.views.status import STATUS_PAGE
    from feedsync.views.status_html import render

    seconds = int(args.expires) * 3600
    now = dt.datetime.now(dt.UTC)
    generated = now.isoformat(timespec="seconds")
    expires = (now + dt.timedelta(seconds=seconds)).isoformat(timespec="minutes")
    page = render(found, lambda report: state.presign(report + ".html", seconds), generated,
                  expires)  # fmt: skip
    if args.html:
        try:
            Path(args.html).write_bytes(page)
        except OSError as exc:
            raise CliError(f"--html {args.html}: {exc.strerror}") from None
        print(f"feedsync: status page written to {args.html}", file=sys.stderr)
    if args.open:
        state.put(STATUS_PAGE, page, "text/html")
        print(f"feedsync: status page (valid {args.expires} h): "
              f"{state.presign(STATUS_PAGE, seconds)}", file=sys.stderr)  # fmt: skip


def _step_functions_progress(backfill: dict[str, Any]) -> None:
    """Add the execution's state and its Distributed Map item counts (when allowed to read)."""
    arn = backfill.get("execution_arn")
    if not arn:
        return
    try:
        import boto3

        sfn = boto3.client("stepfunctions")
        backfill["execution_status"] = sfn.describe_execution(executionArn=arn)["status"]
        counts: dict[str, int] = {}
        for run in sfn.list_map_runs(executionArn=arn).get("mapRuns", []):
            items: dict[str, Any] = dict(
                sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
            )
            for name in ("succeeded", "failed", "pending", "running", "total"):
                counts[name] = counts.get(name, 0) + int(items.get(name, 0))
        backfill["items"] = counts
    except Exception as exc:  # the CLI user may not read Step Functions: say so, go on
        backfill["execution_status"] = f"unknown ({type(exc).__name__})"


def _backfills_text(backfills: list[dict[str, Any]]) -> str:
    lines = []
    for b in backfills:
        if b.get("execution_arn"):
            items = b.get("items") or {}
            detail = f"{b.get('execution_status')}; items " + ", ".join(
                f"{k} {v}" for k, v in items.items()
            )
        else:
            state = "finished" if b.get("finished_at") else f"running ({b.get('phase')})"
            detail = (
                f"{state}; data {b['done']['data']:,} done / {b['failed']['data']} failed, "
                f"manifests {b['done']['manifest']:,} / {b['failed']['manifest']} failed"
            )
        lines.append(f"{b['started_at']}  {b['prefix'] or '(bucket)'}  {detail}")
    return "\n".join(lines)


def _walk_text(walk: dict[str, Any] | None, flying: list[dict[str, Any]]) -> str:
    if not walk:
        return "  not started"
    figures = walk.get("figures") or {}
    where = "done" if walk.get("done") else f"after {walk.get('cursor') or 'the start'}"
    lines = [
        f"  generation {walk['generation']} (walk {walk.get('walk_id') or '-'}): "
        f"{walk.get('next_batch', 0)} batches, {where}",
        "  " + ", ".join(f"{k} {figures.get(k, 0):,}" for k in
                         ("pending", "already_enriched", "looked_up", "matched", "not_found",
                          "rejected", "uploaded_rows")),
    ]  # fmt: skip
    for batch in flying:  # of any generation: the next run finishes them first
        state = "waits for Adobe's answer" if batch.get("waiting") else "cut short"
        lines.append(f"  in flight: batch {batch['walk']}#{batch['number']:05d} "
                     f"({batch['kind']}, generation {batch['generation']}): {state}")  # fmt: skip
    return "\n".join(lines)


def _files_text(files: list[dict[str, Any]]) -> str:
    rows = []
    for f in sorted(files, key=lambda f: (f["generation"], f["batch"], f["file"])):
        job = f.get("job") or {}
        ident = str(
            job.get("job_id") or job.get("idempotency_key") or job.get("batch_status") or ""
        )
        word = f["state"] + (f" ({f['adobe_status']})" if f.get("adobe_status") else "")
        rows.append([f["destination"], f["batch"], f["file"], ident, f["visitors"], word])
    return table(["DESTINATION", "BATCH", "FILE", "JOB", "VISITORS", "ADOBE"], rows)


def cmd_runs_show(args: argparse.Namespace) -> int:
    from feedsync.state.layout import RESULTS, StateLayout
    from feedsync.views.status import delivery_runs

    state, runs = _stores(need_table=True)
    key = delivery_key(state, args.delivery)
    if not state.exists(StateLayout.record(key)) and not any(state.list(f"{RESULTS}{key}/")):
        raise CliError(f"no delivery {key} in the state bucket (`feedsync status` lists the keys)")
    found = delivery_runs(state, runs, key)
    report = found.get("report")
    status = found["status"]
    head = f"{found['key']}: {status['state']}"
    if not report:
        emit(found, args.json, head + " (no daily run yet)")
        return 0
    this_run = report.get("this_run", {})
    rejected = "\n".join(f"  {n:>6,}  {r}" for r, n in report.get("rejected_reasons", {}).items())
    samples = "\n".join(
        f"  {s['visitor']}: {s['reason']}" for s in report.get("rejected_samples", [])
    )
    text = "\n\n".join(
        [
            f"{head}; report {report.get('status')} at {report.get('updated_at')}"
            + (f" - {report['error']}" if report.get("error") else ""),
            "last run: " + ", ".join(f"{k} {v}" for k, v in this_run.items()),
            "outcome: " + str(report.get("outcome", "")),
            "walk:\n" + _walk_text(found.get("walk"), found.get("in_flight") or []),
            "files:\n" + _files_text(found.get("files", [])),
            "rejected rows by reason:\n" + (rejected or "  none"),
            "rejected samples:\n" + (samples or "  none"),
        ]
    )
    emit(found, args.json, text)
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from feedsync.state.forget import forget, what_to_forget

    state, runs = _stores(need_table=True)
    key = delivery_key(state, args.delivery)
    objects = what_to_forget(state, key)
    if not objects:
        raise CliError(f"{key}: nothing stored for this delivery (see `feedsync status`)")
    if not args.yes:
        print(f"feedsync forgets {key}: {len(objects)} objects in the state bucket and its run "
              f"state. {FORGET_KEEPS}", file=sys.stderr)  # fmt: skip
        if not sys.stdin.isatty():
            raise CliError("not a terminal to confirm on: add --yes")
        if input("Type the delivery id to confirm: ").strip() != key.rsplit("/", 1)[-1]:
            print("feedsync: not confirmed; nothing was removed", file=sys.stderr)
            return 1
    done = forget(state, runs, key, force=args.force)  # a run holding it: exit 1, one line
    emit(
        {"key": key, **done.to_json(), "kept": FORGET_KEEPS},
        args.json,
        f"{key}: forgotten ({len(done.objects)} objects, {done.run_items} run-state items). "
        + FORGET_KEEPS,
    )
    return 0


FORGET_KEEPS = (
    "Kept: the ledger (nobody sent is sent again; visitors given up stay given up - "
    "`feedsync retry KEY --given-up` sends them again) and uploads/ (copies of what Adobe holds)."
)


def cmd_runs_rebuild(args: argparse.Namespace) -> int:
    """Recount a delivery's tallies from its file records and the ledger (the report's counts
    are kept as files are sent and decided; this is the slow, exact recount)."""
    import os

    from feedsync.aws.ledger import DynamoLedger
    from feedsync.state.layout import StateLayout
    from feedsync.storage import get_json
    from feedsync.views.rebuild import rebuild

    state, runs = _stores(need_table=True)
    key = delivery_key(state, args.delivery)
    record = get_json(state, StateLayout.record(key))
    if record is None:
        raise CliError(f"no delivery {key} in the state bucket (`feedsync status` lists the keys)")
    ledger = DynamoLedger(runs.table, int(os.environ.get("LEDGER_TTL_DAYS") or 90),
                          int(os.environ.get("LEDGER_MISS_TTL_DAYS") or 7))  # fmt: skip
    changed = rebuild(state, runs, ledger, key, str(record["rsid"]))
    text = f"{key}: tallies recounted; " + (
        f"{len(changed)} figures differed:\n  " + "\n  ".join(changed) if changed else "all agreed"
    )
    emit({"key": key, "differed": changed}, args.json, text)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    import os

    from feedsync.aws.ledger import DynamoLedger
    from feedsync.state.retry import requeue

    state, runs = _stores(need_table=True)
    key = delivery_key(state, args.delivery)
    ledger = DynamoLedger(
        runs.table,
        int(os.environ.get("LEDGER_TTL_DAYS") or 90),
        int(os.environ.get("LEDGER_MISS_TTL_DAYS") or 7),
    )
    given_up = args.given_up or not args.rejected
    done = requeue(state, runs, ledger, key, f"retry-{os.getpid()}", given_up, args.rejected)
    total = done.given_up + done.rejected
    text = (
        f"{key}: {done.given_up:,} given-up and {done.rejected:,} refused visitors will be sent "
        "again by the next daily run (or now: feedsync run-daily --delivery KEY)"
        if total
        else f"{key}: nothing to send again ("
        + ("given-up" if given_up else "")
        + (" or " if given_up and args.rejected else "")
        + ("refused" if args.rejected else "")
        + " visitors: none)"
    )
    emit({"key": key, **done.to_json()}, args.json, text)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from feedsync.checks import CHECKS, run_checks

    skip = (
        {name for name, _ in CHECKS if name == "test delivery"} if args.no_test_delivery else set()
    )
    results = []
    for result in run_checks(skip, wait=args.wait):
        results.append(result)
        if not args.json:
            print(result.line(), flush=True)
    failed = [r for r in results if not r.ok]
    if args.json:
        emit([r.to_json() for r in results], True)
    else:
        print(f"{len(results) - len(failed)} of {len(results)} checks passed")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stat = sub.add_parser(
        "status",
        help="one line per delivery (state, uploads, Adobe's verdict) and the last runs",
        description="Reads STATE_BUCKET (as the functions wrote it).",
    )
    stat.add_argument("--days", type=int, default=7, help="deliveries of the last N days (7)")
    stat.add_argument("--runs", type=int, default=5, metavar="N", help="the last N runs (5)")
    stat.add_argument("--html", metavar="FILE", help="also write the status page to FILE")
    stat.add_argument(
        "--open",
        action="store_true",
        help="put the status page in the state bucket and print a pre-signed link to it",
    )
    stat.add_argument(
        "--expires", type=int, default=24, metavar="HOURS", help="pre-signed links' life (24)"
    )
    stat.add_argument("--json", action="store_true")
    stat.set_defaults(func=cmd_status)
    runs = sub.add_parser("runs", help="daily-run history").add_subparsers(
        dest="runs_command", required=True
    )
    show = runs.add_parser(
        "show",
        help="one delivery's runs, batches, jobs and rejected rows",
        description="Reads STATE_BUCKET and STATE_TABLE.",
    )
    show.add_argument("delivery", help="the delivery key, e.g. adobe/acmeprod/acmeprod_2026-11-20")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_runs_show)
    again = runs.add_parser(
        "rebuild",
        help="recount one delivery's tallies (the report's counts) from its files and the ledger",
        description="Reads every file record of the delivery and, for the visitors Adobe's "
        "verdicts moved, their ledger entries; writes the counts the report shows. The next run "
        "or `feedsync status` shows them. Reads STATE_BUCKET and STATE_TABLE.",
    )
    again.add_argument("delivery", help="the delivery key, e.g. adobe/acmeprod/acmeprod_2026-11-20")
    again.add_argument("--json", action="store_true")
    again.set_defaults(func=cmd_runs_rebuild)
    check = sub.add_parser(
        "check",
        help="is the deployed stack ready? credentials, mapping, data sources, notifications, "
        "alarms, and a test delivery through the parse function",
        description="One line per check, exit 0 when all pass. Use --stack NAME (or "
        "FEEDSYNC_STACK) to read the stack's outputs and settings.",
    )
    check.add_argument(
        "--no-test-delivery", action="store_true", help="skip the test delivery through S3"
    )
    check.add_argument(
        "--wait", type=float, default=180.0, metavar="S", help="for the test delivery (180)"
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)
    forget = sub.add_parser(
        "forget",
        help="remove what feedsync stored about one delivery (a typo'd parse, a lost cause)",
        description="Removes the delivery record, parse results, marker, reports and run state "
        "of DELIVERY; the ledger (each visitor's state) and uploads/ stay, so nobody already "
        "sent is sent again. Asks for the delivery id unless --yes.",
    )
    forget.add_argument(
        "delivery", help="the delivery key, e.g. adobe/acmeprod/acmeprod_2026-11-20"
    )
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forget.add_argument(
        "--force",
        action="store_true",
        help="also when a batch waits for Adobe's answer on an upload (its files may be sent "
        "twice)",
    )
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(func=cmd_forget)
    retry = sub.add_parser(
        "retry",
        help="send a delivery's given-up visitors again (after the cause is fixed), and with "
        "--rejected the rows refused",
        description="Moves the delivery's given-up visitors (and with --rejected the rows a "
        "mapping or destination rule refused) back to retry in the ledger; the next daily run "
        "sends them with their current CRM record. Reads STATE_BUCKET and STATE_TABLE.",
    )
    retry.add_argument("delivery", help="the delivery key, e.g. adobe/acmeprod/acmeprod_2026-11-20")
    retry.add_argument(
        "--given-up", action="store_true", help="the visitors Adobe failed every time (default)"
    )
    retry.add_argument(
        "--rejected", action="store_true", help="the rows refused by the mapping or a destination"
    )
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(func=cmd_retry)
