"""``feedsync aep setup|check``: the schema, identity and dataset the ``aep`` destination needs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from feedsync.cli.common import CliError, adobe_session, emit


def _aep_section(path: str | None) -> dict[str, Any]:
    """The mapping's ``aep`` section: from --mapping FILE, MAPPING_FILE, or the state bucket."""
    if path or os.environ.get("MAPPING_FILE"):
        source = Path(path or os.environ["MAPPING_FILE"])
        try:
            data = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"{source}: {exc}") from None
    else:
        import boto3

        from feedsync.aws.s3 import S3Store
        from feedsync.cli.common import required_env
        from feedsync.storage import get_json

        bucket = required_env("STATE_BUCKET", "or give --mapping FILE")
        key = os.environ.get("MAPPING_KEY", "config/mapping.json")
        data = get_json(S3Store(boto3.client("s3"), bucket), key) or {}
    section = data.get("aep") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise CliError("the mapping has no 'aep' section: add aep.fields (README 'Customer "
                       "Journey Analytics') and pass it with --mapping FILE")  # fmt: skip
    return section


def _mapping(section: dict[str, Any], need_dataset: bool) -> Any:
    from feedsync.daily.aep_mapping import AepMapping

    problems: list[str] = []
    parsed = AepMapping.parse(section, problems)
    if need_dataset and parsed is not None and not parsed.dataset_id:
        problems.append("aep.dataset_id: not set (`feedsync aep setup` creates the dataset and "
                        "prints it)")  # fmt: skip
    if problems or parsed is None:
        raise CliError("mapping: " + "; ".join(problems))
    return parsed


def cmd_aep_setup(args: argparse.Namespace) -> int:
    from feedsync.adobe.aep import AepClient
    from feedsync.aep_setup import setup

    aep = _mapping(_aep_section(args.mapping), need_dataset=False)
    client = AepClient(adobe_session(), args.sandbox)
    say = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr))
    result = setup(client, aep.fields, args.kind, say)
    snippet: dict[str, Any] = {"dataset_id": result.dataset_id, "sandbox": args.sandbox}
    if args.kind == "lookup":
        snippet["identity_path"] = result.identity
    out = {**result.to_json(), "mapping_aep": snippet}
    verdict = "nothing changed" if not result.created else "; ".join(result.created)
    emit(out, args.json,
         f"{verdict}: schema {result.schema_id}, dataset {result.dataset_id}, identity "
         f"{result.identity}\nput in the mapping's aep section: {json.dumps(snippet)}")  # fmt: skip
    return 0


def cmd_aep_check(args: argparse.Namespace) -> int:
    from feedsync.adobe.aep import AepClient
    from feedsync.adobe.cja import CjaClient
    from feedsync.aep_setup import check

    aep = _mapping(_aep_section(args.mapping), need_dataset=True)
    session = adobe_session()
    lines = check(AepClient(session, aep.sandbox), aep, CjaClient(session).connections)
    out = [{"check": n, "ok": ok, "detail": d} for n, ok, d in lines]
    text = "\n".join(f"{'ok  ' if ok else 'FAIL'}  {n}: {d}" for n, ok, d in lines)
    emit(out, args.json, text)
    return 0 if all(ok for _, ok, _ in lines) else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    aep = sub.add_parser(
        "aep", help="Experience Platform: schema and dataset for Customer Journey Analytics"
    ).add_subparsers(dest="aep_command", required=True)
    setup = aep.add_parser(
        "setup",
        help="create (or find) the XDM schema, identity and dataset for the mapped fields",
        description="Idempotent: a second run finds everything and changes nothing.",
    )
    setup.add_argument("--sandbox", default="prod", help="the Platform sandbox (prod)")
    setup.add_argument(
        "--class", dest="kind", choices=("profile", "lookup"), default="profile",
        help="profile: Person ID ECID (identityMap); lookup: keyed by ECID",
    )  # fmt: skip
    setup.add_argument("--mapping", metavar="FILE", help="a mapping file with an aep section")
    setup.add_argument("--json", action="store_true")
    setup.set_defaults(func=cmd_aep_setup)
    check = aep.add_parser(
        "check",
        help="dataset, schema fields, identity, permissions and the CJA connection",
        description="One line per check, exit 0 when all pass.",
    )
    check.add_argument("--mapping", metavar="FILE", help="a mapping file with an aep section")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_aep_check)
