"""``feedsync deploy [--guided]``: one guided pass instead of `sam deploy --guided` asking all
of template.yaml's parameters. It asks only what has no sensible default, writes the answers to
samconfig.toml (where every other setting can be changed later: `parameter_overrides`), and runs
`sam deploy`. The first deploy then answers "not configured" naming what is still missing (the
credentials in the two secrets, the mapping file) - `feedsync check --stack NAME` says it too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from feedsync.cli.common import CliError


@dataclass(frozen=True)
class Question:
    parameter: str  # a template parameter, or "" for a samconfig setting
    prompt: str
    pattern: str  # what an answer must look like ("" accepts anything, empty included)
    form: str  # the expected form, said when an answer is refused
    default: str = ""


# No answer may hold whitespace, a quote or a backslash: each is written into samconfig.toml's
# parameter_overrides, where one would end the value and start another parameter.
_WORD = r'[^\s"\'\\]'

# Everything else has a default that works (template.yaml); these are the installation's own.
QUESTIONS = (
    Question("", "Stack name", r"[A-Za-z][A-Za-z0-9-]{0,127}",
             "letters, digits and hyphens, starting with a letter, at most 128", "feedsync"),
    Question("", "AWS region", r"[a-z]{2}(-[a-z]+)+-\d", "a region code such as eu-west-1",
             "us-east-1"),
    Question("AlertEmail", "E-mail address for alarms (empty: subscribe later)",
             rf"|{_WORD}+@{_WORD}+\.{_WORD}+", "name@example.com, or empty"),
    Question("MarketoBaseUrl", "Marketo REST base (Admin > Web Services), e.g. "
             "https://123-ABC-456.mktorest.com (empty: CRM_SOURCE=file)",
             r"|https://[A-Za-z0-9.-]+(:\d+)?(/rest)?/?",
             "https://123-ABC-456.mktorest.com (the Web Services page's REST endpoint), or empty"),
    Question("DataSourceId", "Data Sources account id (`feedsync datasources accounts RSID`; "
             "empty: set it later)", r"|\d+", "digits only, or empty"),
    Question("AdobeUserArn", "Adobe's user ARN for the feed's S3 location (`feedsync adobe "
             "delivery-role-arn` prints it; empty: an existing bucket or later)",
             r"|arn:aws[a-z-]*:iam::\d{12}:user/[A-Za-z0-9+=,.@_/-]+",
             "arn:aws:iam::123456789012:user/NAME, or empty"),
)  # fmt: skip

# What a samconfig.toml written from nothing needs besides the answers (as the project's own):
# without capabilities and resolve_s3, `sam deploy` refuses the stack.
NEW_SAMCONFIG = """version = 0.1

[default.global.parameters]
stack_name = "feedsync"

[default.build.parameters]
cached = true
parallel = true

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM"
confirm_changeset = true
resolve_s3 = true
"""


def ask(question: Question) -> str:
    shown = f" [{question.default}]" if question.default else ""
    for _ in range(5):
        try:
            answer = input(f"{question.prompt}{shown}: ").strip() or question.default
        except EOFError:
            raise CliError(
                f"no answer to {question.prompt.split(' (')[0]!r}: the input ended (run "
                "`feedsync deploy --guided` in a terminal, or write samconfig.toml and run "
                "`feedsync deploy`)"
            ) from None
        if re.fullmatch(question.pattern, answer):
            return answer
        print(f"feedsync: {answer!r} does not look right: expected {question.form}; try again",
              file=sys.stderr)  # fmt: skip
    raise CliError(f"{question.prompt}: no valid answer (expected {question.form})")


def _overrides(text: str) -> dict[str, str]:
    """Key -> value as written (a quoted value kept with its quotes, as SAM reads it)."""
    return dict(re.findall(r'([A-Za-z0-9]+)=("(?:\\.|[^"\\])*"|\S+)', text))


def _toml(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's (a quote or backslash stays itself)."""
    return json.dumps(value, ensure_ascii=False)


def _deploy_parameters(text: str) -> dict[str, object]:
    """samconfig.toml's [default.deploy.parameters] table."""
    return dict(tomllib.loads(text).get("default", {}).get("deploy", {}).get("parameters", {}))


def _saved(path: Path) -> dict[str, object]:
    """What ``path`` holds for `sam deploy` ({} without the file, or unreadable)."""
    try:
        return _deploy_parameters(path.read_text()) if path.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def stored_region(path: Path | None = None) -> str:
    """The region `deploy --guided` wrote to samconfig.toml ('' without one, or unreadable)."""
    return str(_saved(path or Path("samconfig.toml")).get("region") or "")


def write_samconfig(path: Path, stack: str, region: str, parameters: dict[str, str]) -> None:
    """Set stack_name, region and parameter_overrides, keeping the rest of the file."""
    text = path.read_text() if path.is_file() else NEW_SAMCONFIG
    deploy = _deploy_parameters(text)
    merged = {**_overrides(str(deploy.get("parameter_overrides", ""))), **parameters}
    values = {
        "stack_name": stack,
        "region": region,
        "parameter_overrides": " ".join(f"{k}={v}" for k, v in merged.items() if v),
    }
    text = _set_section(text, "default.global.parameters", {"stack_name": stack})
    text = _set_section(text, "default.deploy.parameters", values)
    path.write_text(text)


def _set_section(text: str, section: str, values: dict[str, str]) -> str:
    lines = text.splitlines()
    header = f"[{section}]"
    if header not in lines:
        lines += ["", header]
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [line for line in lines[start:end] if line.split("=")[0].strip() not in values]
    body = [line for line in body if line.strip()]
    body += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join([*lines[:start], *body, "", *lines[end:]]).rstrip() + "\n"


def _with_saved(questions: tuple[Question, ...], config: Path) -> list[Question]:
    """The questions with what ``config`` already holds as their defaults (a second guided
    pass offers the stack, region and parameters of the first)."""
    deploy = _saved(config)
    saved = {"Stack name": deploy.get("stack_name"), "AWS region": deploy.get("region"),
             **_overrides(str(deploy.get("parameter_overrides", "")))}  # fmt: skip
    out = []
    for question in questions:
        value = str(saved.get(question.parameter or question.prompt) or "")
        usable = value and re.fullmatch(question.pattern, value)
        out.append(dataclasses.replace(question, default=value) if usable else question)
    return out


def _sam() -> str:
    local = Path(sys.prefix) / "bin" / "sam"
    found = str(local) if local.is_file() else shutil.which("sam")
    if not found:
        raise CliError("no `sam` command: `make install` puts it in .venv, or install AWS SAM CLI")
    return found


def cmd_deploy(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if not args.guided and not config.is_file():
        raise CliError(f"{config}: no such SAM config; `feedsync deploy --guided` writes one")
    if not os.path.isdir(".aws-sam/build") and not args.no_build:  # before any question
        raise CliError("no build (.aws-sam/build): run `make build` first")
    if args.guided:
        answers = {q.parameter or q.prompt: ask(q) for q in _with_saved(QUESTIONS, config)}
        stack, region = answers.pop("Stack name"), answers.pop("AWS region")
        parameters = {k: v for k, v in answers.items() if v}
        if not answers.get("MarketoBaseUrl"):
            parameters["CrmSource"] = "file"
        write_samconfig(config, stack, region, parameters)
        print(f"feedsync: saved to {config}; the other parameters keep template.yaml's defaults "
              "(change them there: parameter_overrides)", file=sys.stderr)  # fmt: skip
    command = [_sam(), "deploy", "--config-file", str(config.resolve())]
    if args.yes:
        command += ["--no-confirm-changeset"]
    done = subprocess.run(command, check=False)  # noqa: S603 - our own sam, our arguments
    if done.returncode != 0:
        raise CliError(f"sam deploy failed (exit {done.returncode}); its output says why")
    deployed = str(_saved(config).get("stack_name") or "feedsync")
    print(f"feedsync: deployed. Next: put the credentials in the two secrets (README 'Deploy'), "
          f"then `feedsync check --stack {deployed}`", file=sys.stderr)  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="deploy the stack with sam; --guided asks only what has no default",
        description="Runs `sam deploy` with samconfig.toml. --guided first asks the stack "
        "name, region, alert e-mail, Marketo REST base, Data Sources account and Adobe's "
        "user ARN, and saves them there.",
    )
    deploy.add_argument("--guided", action="store_true", help="ask the installation's values")
    deploy.add_argument("--config", default="samconfig.toml", help="the SAM config file")
    deploy.add_argument("--yes", action="store_true", help="no change set confirmation")
    deploy.add_argument("--no-build", action="store_true", help=argparse.SUPPRESS)
    deploy.set_defaults(func=cmd_deploy)
