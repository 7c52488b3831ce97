"""The ``feedsync`` operator command line.

Exit status: 0 done, 1 the work failed (a refused file, an API error, an incomplete delivery),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from feedsync import __version__
from feedsync.cli import adobe_cmds, daily_cmds, parse_cmd
from feedsync.cli.parse_cmd import PARSE_FIELDS
from feedsync.errors import ApiError, ConfigError, FeedError, FeedsyncError

__all__ = ["PARSE_FIELDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedsync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedsync {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parse_cmd.register(sub)
    adobe_cmds.register(sub)
    daily_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2), message already printed
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except (ApiError, FeedError) as exc:
        print(f"feedsync: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, FeedsyncError) as exc:
        print(f"feedsync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
