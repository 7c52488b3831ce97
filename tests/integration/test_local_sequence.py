"""The README's local sequence, verbatim, in subprocesses: `feedsync local up`, put the demo
delivery into the feed bucket, `feedsync parse s3://...`, `feedsync run-daily`,
`feedsync status`."""

from __future__ import annotations

import json
import os
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


def feedsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsync", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_readme_local_sequence_works_verbatim(local_up: dict[str, str], tmp_path: Path) -> None:
    delivery = tmp_path / "local" / "delivery"
    put = feedsync(
        local_up, "local", "put", str(delivery), "s3://feedsync-feed-local/adobe/acmeprod/"
    )
    assert put.returncode == 0, put.stderr
    assert put.stdout.strip().splitlines()[-1].endswith("acmeprod_2026-11-20.txt")  # manifest last
    parsed = feedsync(
        local_up, "parse", "s3://feedsync-feed-local/adobe/acmeprod/acmeprod_2026-11-20.txt"
    )
    assert parsed.returncode == 0, parsed.stderr
    record = json.loads(parsed.stdout)
    assert record["complete"] and record["visitors_pending"] > 0
    run = feedsync(local_up, "run-daily", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert [d["status"] for d in summary["deliveries"]] == ["complete"]
    assert summary["deliveries"][0]["uploaded_rows"] > 0
    status = feedsync(local_up, "status", "--days", "3650")
    assert status.returncode == 0, status.stderr
    assert "acmeprod" in status.stdout and "enriched" in status.stdout
