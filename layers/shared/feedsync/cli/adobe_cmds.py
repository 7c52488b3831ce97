"""Operator commands for Adobe: whoami, Data Sources, BDIA, Target batch status, the sandbox."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedsync.cli import progress
from feedsync.cli.common import CliError, adobe_session, analytics_client, emit, required_env
from feedsync.deadline import Deadline


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None


JWT_END_OF_LIFE = (
    "the service-account (JWT) credential is end of life at Adobe (no new ones since "
    "2025-06-30, the rest converted by March 2026). Migrate: in the Adobe Developer Console, "
    "open the project, add an OAuth Server-to-Server credential to it, then set ADOBE_AUTH=oauth "
    "with that credential's client id, client secret and scopes (README, 'Adobe set-up')"
)


def cmd_whoami(args: argparse.Namespace) -> int:
    from feedsync.adobe.analytics import AnalyticsClient

    session = adobe_session()
    if session.credentials.auth == "jwt":
        print(f"feedsync: warning: {JWT_END_OF_LIFE}", file=sys.stderr)
    companies = AnalyticsClient(session).discovery()
    expires = session.tokens.expires_at()
    out = {
        "client_id": session.credentials.client_id,
        "org_id": session.credentials.org_id,
        "auth": session.credentials.auth,
        "token_expires_at": datetime.fromtimestamp(expires, UTC).isoformat() if expires else None,
        "companies": [
            {k: c.get(k) for k in ("globalCompanyId", "companyName", "imsOrgId")} for c in companies
        ],
    }
    lines = [
        f"client {out['client_id']} ({out['auth']}) in org {out['org_id']}",
        f"token expires {out['token_expires_at']}",
        *(f"company {c['globalCompanyId']}: {c['companyName']}" for c in out["companies"]),
    ]
    emit(out, args.json, "\n".join(lines))
    return 0


def _datasources() -> Any:
    from feedsync.adobe.datasources import DataSourcesClient

    return DataSourcesClient(analytics_client())


def cmd_ds_accounts(args: argparse.Namespace) -> int:
    accounts = _datasources().accounts(args.rsid)
    safe = [{k: v for k, v in a.items() if k != "ftp_password"} for a in accounts]
    text = "\n".join(f"{a['data_source_id']}\t{a.get('type')}\t{a.get('name')}" for a in safe)
    emit(safe, args.json, text or "no data source accounts")
    return 0


def cmd_ds_upload(args: argparse.Namespace) -> int:
    data = _read(args.file)
    from feedsync.adobe import datasource_file  # not loaded for the other commands

    problems = datasource_file.problems(data)
    if problems:
        for problem in problems:
            print(f"feedsync: {args.file}: {problem}", file=sys.stderr)
        return 1
    client = _datasources()
    job = client.upload(args.rsid, args.data_source_id, Path(args.file).name, data)
    if args.wait:
        ticker = progress.Ticker()
        job = client.wait(
            args.rsid,
            args.data_source_id,
            job["job_id"],
            Deadline.after(args.timeout),
            args.poll,
            on_poll=lambda j: progress.show(
                f"job {j.get('job_id')}: {j.get('status')}, {ticker.elapsed:.0f} s"
            ),
        )
        progress.done()
    emit(job, args.json, f"job {job.get('job_id')}: {job.get('status')} ({job.get('rows')} rows)")
    if job.get("status") == "failure":
        return 1
    if args.wait and job.get("status") not in ("success", "deleted"):
        print(
            f"feedsync: gave up waiting after {args.timeout:g} s (job {job.get('status')})",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_ds_jobs(args: argparse.Namespace) -> int:
    jobs = list(_datasources().jobs(args.rsid, args.data_source_id, status=args.status))
    text = "\n".join(
        f"{j.get('job_id')}\t{j.get('status')}\t{j.get('rows')}\t{j.get('filename')}" for j in jobs
    )
    emit(jobs, args.json, text or "no jobs")
    return 0


def cmd_bdia_validate(args: argparse.Namespace) -> int:
    from feedsync.adobe.bdia import BdiaClient, file_problems  # only for the bdia commands

    data = _read(args.file)
    problems = file_problems(data)
    result: dict[str, Any] = {"file": args.file, "local_problems": problems}
    if not problems and not args.local:
        result["adobe"] = BdiaClient(adobe_session()).validate(data)
    emit(result, args.json, "valid" if not problems else "\n".join(problems))
    return 1 if problems else 0


def cmd_bdia_upload(args: argparse.Namespace) -> int:
    from feedsync.adobe.bdia import BdiaClient, file_problems  # only for the bdia commands

    data = _read(args.file)
    problems = file_problems(data)
    if problems:  # the same exit status as `bdia validate`: the file is refused (1)
        for problem in problems:
            print(f"feedsync: {args.file}: {problem}", file=sys.stderr)
        return 1
    # A key derived from the content makes re-running the same command a no-op at Adobe.
    key = args.idempotency_key or hashlib.sha256(args.visitor_group.encode() + data).hexdigest()
    result = BdiaClient(adobe_session()).upload(data, args.visitor_group, key)
    emit({**result, "idempotency_key": key}, args.json, f"sent {args.file} with key {key}")
    return 0


NEWLINE = b"\n"


def _target_client() -> Any:
    from feedsync.adobe.target import TargetClient

    return TargetClient(
        adobe_session(),
        required_env("ADOBE_TARGET_TENANT", "the Target tenant of the admin API"),
        required_env("ADOBE_TARGET_CLIENT", "the Target client code"),
    )


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def _wait_batch(client: Any, url: str, timeout: float, poll: float, wait: bool) -> Any:
    deadline = time.monotonic() + timeout
    ticker = progress.Ticker()
    status = client.batch_status(url, details=True)
    while wait and not status.finished and time.monotonic() < deadline:
        progress.show(f"{status.batch_id}: {status.status}, {ticker.elapsed:.0f} s")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        status = client.batch_status(url, details=True)
    progress.done()
    return status


def _batch_line(url: str, status: Any) -> str:
    details = ", ".join(f"{k} {v}" for k, v in status.details.items())
    line = f"{status.batch_id}: {status.status} ({status.size} rows)"
    line += f"; {details}" if details else ""
    if status.state == "stuck":
        line += f" - Target will not complete this batch: {url}"
    return line


def _batch_json(url: str, status: Any) -> dict[str, Any]:
    return {
        "batch_status": url,
        "batch_id": status.batch_id,
        "status": status.status,
        "state": status.state,
        "batch_size": status.size,
        **status.details,
    }


def cmd_target_batch_status(args: argparse.Namespace) -> int:
    client = _target_client()
    try:
        status = _wait_batch(client, args.url, args.timeout, args.poll, args.wait)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    emit(_batch_json(args.url, status), args.json, _batch_line(args.url, status))
    if status.state == "complete":
        return 0
    if args.wait and status.state == "incomplete":
        print(f"feedsync: still incomplete after {args.timeout:g} s: {args.url}", file=sys.stderr)
    return 1 if (args.wait or status.state == "stuck") else 0


def cmd_target_bulk_update(args: argparse.Namespace) -> int:
    from feedsync.adobe.target import batches_from_file

    try:
        files = batches_from_file(_read(args.file), args.file)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    client = _target_client()
    results = []
    for data in files:
        url = client.batch_update(data)
        rows = data.count(NEWLINE) - 1
        print(f"feedsync: batch of {rows} rows sent: {url}", file=sys.stderr)
        status = _wait_batch(client, url, args.timeout, args.poll, args.wait)
        results.append((url, status))
    emit(
        [_batch_json(u, s) for u, s in results],
        args.json,
        "\n".join(_batch_line(u, s) for u, s in results),
    )
    if args.wait:
        return 0 if all(s.state == "complete" for _, s in results) else 1
    return 1 if any(s.state == "stuck" for _, s in results) else 0


def _dev_tool(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CliError(
            "the sandbox is a development tool: run this from a feedsync checkout "
            "(pip install -e '.[dev]')"
        ) from None


def cmd_sandbox(args: argparse.Namespace) -> int:
    run = _dev_tool("sandbox.run")
    leads = Path(args.leads) if args.leads else None
    if leads is not None and not leads.is_file():
        raise CliError(f"--leads {args.leads}: no such file")
    run.serve(args.host, args.port, leads)
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    _dev_tool("sandbox.local").serve(Path(args.dir), args.host, args.aws_port, args.port)
    return 0


def cmd_local_put(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"{args.folder}: no such delivery folder")
    if not args.target.startswith("s3://"):
        raise CliError(f"{args.target}: expected s3://BUCKET/PREFIX/")
    for uri in _dev_tool("sandbox.local").put_delivery(folder, args.target):
        print(uri)
    return 0


def cmd_delivery_role_arn(args: argparse.Namespace) -> int:
    """The Adobe user the AdobeDeliveryRole must trust (Cloud Locations getS3UserArn)."""
    from feedsync.adobe.datafeeds import DataFeedClient

    arn = DataFeedClient(analytics_client()).delivery_user_arn()
    hint = f"(deploy with AdobeUserArn={arn}: the stack's AdobeDeliveryRole trusts it)"
    emit({"userARN": arn}, args.json, f"{arn}\n{hint}")
    return 0


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    adobe = sub.add_parser("adobe", help="Adobe credentials").add_subparsers(
        dest="adobe_command", required=True
    )
    whoami = adobe.add_parser("whoami", help="get a token; list the Analytics companies")
    _json_flag(whoami)
    whoami.set_defaults(func=cmd_whoami)
    role = adobe.add_parser(
        "delivery-role-arn",
        help="the Adobe user ARN the AdobeDeliveryRole must trust (Cloud Locations API)",
    )
    _json_flag(role)
    role.set_defaults(func=cmd_delivery_role_arn)

    ds = sub.add_parser("datasources", help="Data Sources 2.0").add_subparsers(
        dest="ds_command", required=True
    )
    accounts = ds.add_parser("accounts", help="list the data source accounts of a report suite")
    accounts.add_argument("rsid")
    _json_flag(accounts)
    accounts.set_defaults(func=cmd_ds_accounts)
    upload = ds.add_parser("upload", help="check a data source file, then upload it")
    upload.add_argument("rsid")
    upload.add_argument("data_source_id")
    upload.add_argument("file")
    upload.add_argument("--wait", action="store_true", help="wait until the job finishes")
    upload.add_argument("--timeout", type=_positive, default=1800, help="seconds --wait waits")
    upload.add_argument("--poll", type=_positive, default=15, help="seconds between job checks")
    _json_flag(upload)
    upload.set_defaults(func=cmd_ds_upload)
    jobs = ds.add_parser("jobs", help="list the jobs of a data source (all pages)")
    jobs.add_argument("rsid")
    jobs.add_argument("data_source_id")
    jobs.add_argument(
        "--status", choices=("uploaded", "processing", "success", "failure", "deleted")
    )
    _json_flag(jobs)
    jobs.set_defaults(func=cmd_ds_jobs)

    bd = sub.add_parser("bdia", help="Bulk Data Insertion API").add_subparsers(
        dest="bdia_command", required=True
    )
    validate = bd.add_parser("validate", help="check a BDIA file locally, then with Adobe")
    validate.add_argument("file")
    validate.add_argument("--local", action="store_true", help="local checks only")
    _json_flag(validate)
    validate.set_defaults(func=cmd_bdia_validate)
    send = bd.add_parser("upload", help="ingest a BDIA file (permanent)")
    send.add_argument("file")
    send.add_argument("--visitor-group", required=True, metavar="G")
    send.add_argument("--idempotency-key", metavar="KEY", help="default: hash of group + file")
    _json_flag(send)
    send.set_defaults(func=cmd_bdia_upload)

    tg = sub.add_parser("target", help="Adobe Target").add_subparsers(
        dest="target_command", required=True
    )
    status = tg.add_parser(
        "batch-status",
        help="the state of a bulk profile update (complete, incomplete or stuck)",
        description="Exit 0 when complete; 1 when stuck, or when --wait gives up while still "
        "incomplete.",
    )
    status.add_argument("url", help="the batchStatus URL batchUpdate returned")
    status.add_argument("--wait", action="store_true", help="poll until complete or stuck")
    status.add_argument("--timeout", type=_positive, default=3600, help="seconds --wait waits")
    status.add_argument("--poll", type=_positive, default=30, help="seconds between polls")
    _json_flag(status)
    status.set_defaults(func=cmd_target_batch_status)
    bulk = tg.add_parser(
        "bulk-update",
        help="send a bulk profile file (CSV keyed by thirdPartyId or pcId, or a batch= file)",
        description="Splits the file under Target's limits (500,000 rows, 50 MB), URL-encodes "
        "values, sends each batch and prints its status URL. Exit 0 only when every batch ends "
        "complete (with --wait) or none is stuck.",
    )
    bulk.add_argument("file")
    bulk.add_argument("--wait", action="store_true", help="poll each batch until it finishes")
    bulk.add_argument("--timeout", type=_positive, default=3600, help="seconds --wait waits")
    bulk.add_argument("--poll", type=_positive, default=30, help="seconds between polls")
    _json_flag(bulk)
    bulk.set_defaults(func=cmd_target_bulk_update)

    box = sub.add_parser("sandbox", help="run the local Adobe/Marketo stand-ins (development)")
    box.add_argument("--host", default="127.0.0.1")
    box.add_argument("--port", type=int, default=8765)
    box.add_argument("--leads", metavar="FILE", help="Marketo leads to load (JSON Lines or CSV)")
    box.set_defaults(func=cmd_sandbox)
    local = sub.add_parser("local", help="feedsync on loopback: moto + the sandbox (development)")
    verbs = local.add_subparsers(dest="local_command", required=True)
    up = verbs.add_parser(
        "up", help="start moto and the sandbox, create the stores, print the exports"
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--aws-port", type=int, default=5000, help="moto server port (0: any)")
    up.add_argument("--port", type=int, default=8765, help="sandbox port (0: any)")
    up.add_argument("--dir", default=".local", help="where the demo delivery is written")
    up.set_defaults(func=cmd_local_up)
    put = verbs.add_parser("put", help="upload a delivery folder as Adobe does (manifest last)")
    put.add_argument("folder")
    put.add_argument("target", metavar="s3://BUCKET/PREFIX/")
    put.set_defaults(func=cmd_local_put)
