"""The ``feedsync`` operator command line.

Exit status: 0 done, 1 the work failed (a refused file, an API error, an incomplete delivery),
2 bad usage or configuration. With ``--json``, an error is also printed on stdout as
``{"error": ..., "exit": N}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from feedsync import __version__
from feedsync.cli import adobe_cmds, backfill_cmd, daily_cmds, parse_cmd, progress, status_cmds
from feedsync.cli.errors import explain
from feedsync.cli.parse_cmd import PARSE_FIELDS

__all__ = ["PARSE_FIELDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedsync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedsync {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="the package's INFO logs on stderr"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines (also off when not a TTY)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    parse_cmd.register(sub)
    adobe_cmds.register(sub)
    daily_cmds.register(sub)
    status_cmds.register(sub)
    backfill_cmd.register(sub)
    return parser


def _logging(verbose: bool) -> None:
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package = logging.getLogger("feedsync")
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def _fail(message: str, code: int, as_json: bool) -> int:
    print(f"feedsync: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit": code}))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2), message already printed
        return int(exc.code or 0)
    _logging(args.verbose)
    progress.configure(quiet=args.quiet)
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        known = explain(exc)
        if known is None:
            raise  # a bug: the traceback is what a report needs
        return _fail(known[0], known[1], as_json)
