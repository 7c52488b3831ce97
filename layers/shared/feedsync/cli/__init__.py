"""The ``feedsync`` operator command line.

Exit status: 0 done, 1 the work failed (a refused file, an API error, an incomplete delivery),
2 bad usage or configuration, 130 interrupted (Ctrl-C: what was done is kept, a run resumes).
With ``--json``, an error is also printed on stdout as ``{"error": ..., "exit": N}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from feedsync import __version__
from feedsync.cli import (
    adobe_cmds,
    aep_cmds,
    backfill_cmd,
    daily_cmds,
    deploy_cmd,
    feeds_cmds,
    parse_cmd,
    progress,
    status_cmds,
)
from feedsync.cli.errors import explain
from feedsync.cli.parse_cmd import PARSE_FIELDS

__all__ = ["PARSE_FIELDS", "build_parser", "main"]


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options every command takes, before or after its name (as the AWS CLI's do)."""
    keep: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}  # after: if given
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="INFO logs and tracebacks on stderr", **keep
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines (also off when not a TTY)",
        **keep,
    )  # fmt: skip
    parser.add_argument("--profile", help="the AWS profile to use (AWS_PROFILE)", **keep)
    parser.add_argument("--region", help="the AWS region (AWS_REGION)", **keep)
    parser.add_argument(
        "--stack", help="read a deployed stack's outputs and settings (FEEDSYNC_STACK)", **keep
    )
    parser.add_argument(
        "--output", choices=("text", "json"), help="json: as --json (AWS CLI style)", **keep
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found.append(child)
                found.extend(_subparsers(child))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedsync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedsync {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    parse_cmd.register(sub)
    adobe_cmds.register(sub)
    daily_cmds.register(sub)
    status_cmds.register(sub)
    backfill_cmd.register(sub)
    deploy_cmd.register(sub)
    feeds_cmds.register(sub)
    aep_cmds.register(sub)
    for child in _subparsers(parser):
        _common(child, top=False)
    return parser


class _OneLine(logging.Formatter):
    """Warnings and errors as one line, without the traceback (``-v`` shows it)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        # a structured log's context (the functions log it as JSON keys): said, never dropped
        said = {name: str(getattr(record, name)) for name in CONTEXT if hasattr(record, name)}
        context = [f"{name}={value}" for name, value in said.items() if value not in message]
        return f"feedsync: {message}" + (f" ({', '.join(context)})" if context else "")


CONTEXT = ("delivery", "file", "key", "batch", "error")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (it may be swapped meanwhile)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _logging(verbose: bool) -> Callable[[], None]:
    """The command's log handler on the package logger; the returned callable takes it away
    again (``main`` called in a process that goes on - the tests, a notebook - leaves the
    loggers as it found them, so a Lambda handler loaded later configures its own)."""
    package = logging.getLogger("feedsync")
    handler = _Stderr()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:  # else Python's last-resort handler prints every logged exception's traceback
        handler.setFormatter(_OneLine())
        handler.setLevel(logging.WARNING)
    # A Lambda handler module loaded earlier in this process leaves its JSON handler on the
    # package's loggers (Powertools copies it to each): while the command runs, only this
    # handler speaks, on stderr, and every feedsync logger propagates to it.
    names = [n for n in logging.root.manager.loggerDict if n.split(".", 1)[0] == "feedsync"]
    loggers = [logging.getLogger(n) for n in {"feedsync", *names}]
    before = [(log, list(log.handlers), log.propagate, log.level) for log in loggers]
    for log in loggers:
        log.handlers, log.propagate = [], True
        if log is not package:
            log.setLevel(logging.NOTSET)
    package.handlers = [handler]
    package.setLevel(logging.INFO if verbose else logging.WARNING)

    def restore() -> None:
        for log, handlers, propagate, level in before:
            log.handlers, log.propagate, log.level = handlers, propagate, level

    return restore


def _aws_options(args: argparse.Namespace) -> None:
    import os

    if getattr(args, "profile", None):
        os.environ["AWS_PROFILE"] = args.profile
    if getattr(args, "region", None):
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
    region_from_settings()
    if getattr(args, "output", None) == "json" and hasattr(args, "json"):
        args.json = True
    stack = getattr(args, "stack", None) or os.environ.get("FEEDSYNC_STACK", "")
    if stack and args.command not in ("sandbox", "local", "parse", "build-upload", "deploy"):
        from feedsync.cli.stack import apply

        apply(stack)


def region_from_settings() -> str:
    """The region as the AWS CLI and Lambda find it: ``AWS_REGION`` is honoured (boto3 reads
    only ``AWS_DEFAULT_REGION`` and the profile), then the region ``deploy --guided`` stored in
    ./samconfig.toml when nothing else names one (so ``check --stack`` finds the stack)."""
    import os

    region = os.environ.get("AWS_REGION", "").strip()
    if region and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = region
    if os.environ.get("AWS_DEFAULT_REGION"):
        return os.environ["AWS_DEFAULT_REGION"]
    import boto3

    if boto3.session.Session().region_name:  # the profile's
        return str(boto3.session.Session().region_name)
    from feedsync.cli.deploy_cmd import stored_region

    stored = stored_region()
    if stored:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = stored
    return stored


INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


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
    restore_logging = _logging(args.verbose)
    try:
        return _run(args)
    except BrokenPipeError:  # `feedsync ... | head`: the reader had enough; not an error
        _quiet_stdout()
        return 0
    finally:
        restore_logging()


def _quiet_stdout() -> None:
    """stdout's reader is gone: point it at /dev/null, so the interpreter's last flush does not
    raise again on the way out."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real descriptor (a test's capture): nothing to flush
        pass


def _run(args: argparse.Namespace) -> int:
    progress.configure(quiet=args.quiet)
    if getattr(args, "output", None) == "json" and hasattr(args, "json"):
        args.json = True
    as_json = bool(getattr(args, "json", False))
    try:
        _aws_options(args)
        return int(args.func(args))
    except BrokenPipeError:
        raise  # main: not an error of the command
    except KeyboardInterrupt:
        progress.done()
        return _fail("interrupted; nothing lost; run it again to resume", INTERRUPTED, as_json)
    except Exception as exc:
        known = explain(exc)
        if known is None or args.verbose:
            if known is None and not args.verbose:  # a bug: one line, and how to see more
                return _fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for the "
                             "traceback, and report it)", 1, as_json)  # fmt: skip
            raise  # -v: the traceback is what a report needs
        return _fail(known[0], known[1], as_json)
