"""The README's local sequence, verbatim, in subprocesses: `feedsync local up`, put the demo
delivery into the feed bucket, `feedsync parse s3://...`, `feedsync run-daily`,
`feedsync status`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ADOBE_", "MARKETO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "local", "up", "--aws-port", "0", "--port", "0",
         "--dir", str(tmp_path / "local")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    exports: dict[str, str] = {}
    started = time.monotonic()
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line[len("export ") :].strip().partition("=")
            exports[name] = value
        if line.startswith("# Ctrl-C") or time.monotonic() - started > 60:
            break
    try:
        assert "AWS_ENDPOINT_URL" in exports, process.stderr.read() if process.stderr else ""
        yield {**env, **exports}
    finally:
        process.terminate()
        process.wait(timeout=10)
    # the terminal it runs in stays readable: no access-log line for each request served
    logged = process.stderr.read() if process.stderr else ""
    assert '"GET /' not in logged and '"PUT /' not in logged, logged[:500]


def feedsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsync", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def readme_sequence() -> list[list[str]]:
    """The commands of the README's local block, as written (comments dropped), after the
    first shell's `local up` (the fixture) and the second shell's `source` line."""
    text = (ROOT / "README.md").read_text()
    block = text.split("**Locally, without AWS or Docker**", 1)[1].split("```sh\n", 1)[1]
    block = block.split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split(" #", 1)[0].strip() or "#", comments=True)
        if words and words[0] == "feedsync":
            commands.append(words[1:])
    return commands


def test_the_readme_local_sequence_works_verbatim(local_up: dict[str, str], tmp_path: Path) -> None:
    commands = readme_sequence()
    assert [c[0] for c in commands] == ["local", "parse", "run-daily", "status"]
    results = []
    for args in commands:
        args = [a.replace(".local/", str(tmp_path / "local") + "/") for a in args]
        done = feedsync(local_up, *args)
        assert done.returncode == 0, (args, done.stderr)
        results.append(done)
    put, parsed, run, status = results
    assert put.stdout.strip().splitlines()[-1].endswith("acmeprod_2026-11-20.txt")  # manifest last
    record = json.loads(parsed.stdout)
    assert record["complete"] and record["visitors_pending"] > 0
    assert "adobe/acmeprod/acmeprod_2026-11-20: complete" in run.stdout
    # sent, Adobe not asked yet: never "enriched" before its verdict
    assert "acmeprod" in status.stdout and "waiting for Adobe" in status.stdout


def test_feedsync_check_passes_against_local_up(local_up: dict[str, str]) -> None:
    # before any parse: "nothing to enrich" names the delivery waiting in the feed bucket
    done = feedsync(local_up, "run-daily")
    assert done.returncode == 0 and "nothing to enrich" in done.stdout, done.stderr
    assert (
        "1 deliveries in FEED_BUCKET were never parsed: `feedsync parse s3://feedsync-feed-"
        "local/adobe/acmeprod/acmeprod_2026-11-20.txt`" in done.stderr
    ), done.stderr
    done = feedsync(local_up, "check", "--wait", "60")
    assert done.returncode == 0, (done.stdout, done.stderr)
    *lines, summary = done.stdout.strip().splitlines()
    assert lines and all(line.startswith("ok") for line in lines), done.stdout
    assert summary == f"{len(lines)} of {len(lines)} checks passed"
    assert any("parsed by the deployed function" in line for line in lines)
    assert any("EventBridge" in line for line in lines)
