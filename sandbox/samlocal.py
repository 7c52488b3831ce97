"""``make sam-local``: every event in events/ through ``sam local invoke`` (the built functions
in a Lambda Python 3.12 container) against ``feedsync local up``, each answer checked against
what the CLI computes from the same delivery.

Skipped - saying why - where Docker or the Lambda image is missing. On machines without an
image registry, ../shared/tools/lambda-local/ builds a stand-in image and puts SAM's
containers on the host network (loopback only); this runner uses that shim when it is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
SHIM = ROOT.parent / "shared" / "tools" / "lambda-local" / "hostnet"
ORDER = [
    ("s3-put-datafile.json", "ParseFeedFunction"),
    ("s3-put-manifest.json", "ParseFeedFunction"),
    ("eventbridge-object-created.json", "ParseFeedFunction"),
    ("schedule-daily.json", "EnrichUploadFunction"),
    ("continuation.json", "EnrichUploadFunction"),
    ("backfill-date.json", "EnrichUploadFunction"),
]
Check = Callable[[dict[str, Any], dict[str, Any]], str]  # (answer, expected) -> "" when right


def why_not() -> str:
    """Why sam local invoke cannot run here, or ''."""
    if shutil.which("docker") is None:
        return "no docker command (install Docker to run the functions in a Lambda container)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return ("the Docker daemon is not running (here: ../shared/tools/lambda-local/"
                "start-dockerd.sh)")  # fmt: skip
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True)
    if found.returncode != 0:
        return (f"no {IMAGE} image and no registry to pull it from (here: ../shared/tools/"
                "lambda-local/build-image.sh .)")  # fmt: skip
    if not (ROOT / ".aws-sam" / "build" / "template.yaml").is_file():
        return "no sam build output (.aws-sam/build): run `make build`"
    return ""


def _first(answer: dict[str, Any]) -> dict[str, Any]:
    return dict((answer.get("results") or [{}])[0])


def _checks() -> dict[str, Check]:
    def parsed(a: dict[str, Any], e: dict[str, Any]) -> str:
        return "" if _first(a).get("status") == "parsed" else f"expected parsed: {_first(a)}"

    def closed(a: dict[str, Any], e: dict[str, Any]) -> str:
        got = _first(a)
        if got.get("status") != "complete" or got.get("visitors_pending") != e["pending"]:
            return f"expected complete with {e['pending']} pending: {got}"
        return ""

    def enriched(a: dict[str, Any], e: dict[str, Any]) -> str:
        d = (a.get("deliveries") or [{}])[0]
        want = {"status": "complete", "pending": e["pending"], "matched": e["matched"],
                "uploaded_rows": e["matched"]}  # fmt: skip
        got = {k: d.get(k) for k in want}
        return "" if got == want else f"expected {want}: {got}"

    def nothing_new(a: dict[str, Any], e: dict[str, Any]) -> str:
        d = (a.get("deliveries") or [{}])[0]
        run = d.get("this_run") or {}
        ok = d.get("status") == "complete" and not run.get("crm_calls") and not run.get("rows_sent")
        return "" if ok else f"expected complete with nothing sent again: {d}"

    def dry(a: dict[str, Any], e: dict[str, Any]) -> str:
        d = (a.get("deliveries") or [{}])[0]
        ok = a.get("dry_run") is True and d.get("status") == "complete"
        return "" if ok else f"expected a complete dry run: {a}"

    return {"s3-put-datafile.json": parsed, "s3-put-manifest.json": closed,
            "eventbridge-object-created.json": closed, "schedule-daily.json": enriched,
            "continuation.json": nothing_new, "backfill-date.json": dry}  # fmt: skip


def _expected(delivery: Path) -> dict[str, Any]:
    """What the CLI says of the same delivery: pending visitors, and the 10% local up loaded
    into the Marketo stand-in (every 10th of the sorted pending ids)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as pending:
        done = subprocess.run(
            [sys.executable, "-m", "feedsync", "parse", str(delivery), "--pending-out",
             pending.name], capture_output=True, text=True, check=True,
        )  # fmt: skip
        ids = [line for line in Path(pending.name).read_text().splitlines() if line]
    record = json.loads(done.stdout)
    return {"pending": record["visitors_pending"], "matched": len(sorted(ids)[::10])}


def _brief(answer: dict[str, Any]) -> str:
    first = _first(answer)
    if first:
        keys = ("status", "visitors_pending") if "visitors_pending" in first else ("status",)
        return json.dumps({k: first.get(k) for k in keys})
    d = dict((answer.get("deliveries") or [{}])[0])
    run = d.get("this_run") or {}
    return json.dumps({"dry_run": answer.get("dry_run"), "status": d.get("status"),
                       "pending": d.get("pending"), "matched": d.get("matched"),
                       "at_adobe": d.get("uploaded_rows"), "this_run_sent": run.get("rows_sent")})  # fmt: skip


def _invoke(function: str, event: Path, env_file: Path, local_env: dict[str, str]) -> Any:
    command = [str(ROOT / ".venv" / "bin" / "sam"), "local", "invoke", function, "-e",
               str(event), "--env-vars", str(env_file), "--skip-pull-image",
               "--template", str(ROOT / ".aws-sam" / "build" / "template.yaml")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=local_env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"sam local invoke {function} gave no answer:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def _environment() -> dict[str, str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}  # fmt: skip
    if SHIM.is_dir():  # no bridge network here: SAM's containers on the host's loopback
        env.update(PYTHONPATH=str(SHIM), SAMLOCAL_HOSTNET="1", SAMLOCAL_REQUIRE_LOOPBACK="1")
    return env


def _local_up(workdir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "local", "up", "--dir", str(workdir),
         "--aws-port", "0", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (workdir / "sam-env.json").is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"feedsync local up did not start: {process.stdout}")
        time.sleep(0.2)
    return process


def main() -> int:
    reason = why_not()
    if reason:
        print(f"sam-local: SKIPPED - {reason}")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="feedsync-sam-local-") as tmp:
        workdir = Path(tmp)
        stack = _local_up(workdir)
        try:
            expected = _expected(workdir / "delivery")
            checks, env = _checks(), _environment()
            for name, function in ORDER:
                answer = _invoke(function, EVENTS / name, workdir / "sam-env.json", env)
                problem = checks[name](answer, expected)
                failed += bool(problem)
                print(
                    f"{'FAIL' if problem else 'ok  '}  {name:<34} {function:<21} {_brief(answer)}"
                )
                if problem:
                    print(f"      {problem}")
        finally:
            stack.terminate()
            stack.wait(timeout=30)
    print(f"sam-local: {len(ORDER) - failed} of {len(ORDER)} events answered as the CLI says")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
