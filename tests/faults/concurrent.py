"""Two invocations of the daily run in two processes at once (a scheduler's at-least-once
delivery, a continuation still running, an operator's `feedsync run-daily` beside the
schedule), round after round, while Adobe fails every file of the first walk once: both
reconcile the same failed files, both try to re-send their visitors, both try to walk.

AWS is a moto server on loopback that both processes (and this one) talk to; Adobe and Marketo
are the stand-ins in this process. Each *point* starts the second process a little later than
the first (0 s, 0.05 s, 0.1 s ...), so the two meet in different places. The check is the kill
sweep's: every matched visitor exactly once at Adobe, the report saying the same.

    python -m tests.faults.concurrent [--points N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.faults.harness import DAY, KEY, Installation, Outcome, Scenario, check

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 8
STAGGER = 0.05  # seconds between the two processes' starts, times the point's number
SCENARIO = Scenario("datasources", visitors=700)
NAME = "datasources+two-processes"


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from sandbox import moto_patches
    from sandbox.local import free_port

    moto_patches.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL",)}
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        import requests

        # moto's backends live in this process, shared by every server it starts: the next
        # point starts from an empty account
        requests.post(f"{endpoint}/moto-api/reset", timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    child_env = {**os.environ, **env}
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers/shared"), str(ROOT / "functions/enrich_upload"), str(ROOT)]
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.concurrent", "--child"],
        env=child_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _answer(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=300)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {"error": f"exit {process.returncode}"}


def _two_at_once(install: Installation, env: dict[str, str], delay: float) -> list[Any]:
    first = _start(env)
    time.sleep(delay)
    second = _start(env)
    return [_answer(first), _answer(second)]


def one_point(point: int, workdir: Path) -> Outcome:
    from moto import mock_aws  # noqa: F401 - the server mode needs moto's server extras

    from sandbox.adobe import ISSUED_TOKEN_HOOKS
    from sandbox.run import Sandbox

    box = Sandbox.start(
        bdia_interval=0.0,
        bdia_group_interval=0.0,
        jobs_page_size=50,
        marketo={"calls_per_window": 100, "window": 20.0, "concurrency": 10},
    )
    try:
        with moto_server() as endpoint:
            install = Installation(box, workdir, SCENARIO)
            install.deliver(0)
            # every file of the first walk fails once; their re-sends (other batches) succeed
            box.adobe.fail_jobs.update(f"_b{n:05d}_" for n in range(3))
            env = {**install.world.env, "AWS_ENDPOINT_URL": endpoint,
                   "POWERTOOLS_LOG_LEVEL": "CRITICAL"}  # fmt: skip
            rounds, errors = 0, []
            while rounds < ROUNDS and not (rounds > 2 and install.done()):
                answers = _two_at_once(install, env, STAGGER * point)
                errors += [str(a["error"]) for a in answers if "error" in a]
                rounds += 1
            outcome = check(install, NAME, f"second process {STAGGER * point:.2f} s later", rounds)
            outcome.errors += errors
            statuses = [j["status"] for j in box.adobe.datasource_jobs.values()]
            if "failure" not in statuses:
                outcome.errors.append("no Data Sources job failed: nothing was re-sent")
            if not install.done():
                outcome.errors.append(f"not done after {rounds} rounds of two invocations")
            return outcome
    finally:
        box.stop()
        del ISSUED_TOKEN_HOOKS[:]


def points(n: int, workdir: Path) -> list[Outcome]:
    return [one_point(p, workdir / f"p{p}") for p in range(n)]


def _child() -> int:
    """One Lambda invocation of EnrichUploadFunction in this process, its answer as JSON."""
    import enrich_upload

    from sandbox.lambda_context import FakeLambdaContext
    from sandbox.world import LambdaInvocations

    if enrich_upload.CLIENTS is not None:
        import dataclasses

        enrich_upload.CLIENTS = dataclasses.replace(
            enrich_upload.CLIENTS, lambda_=LambdaInvocations()
        )
    answer = enrich_upload.lambda_handler({}, FakeLambdaContext("EnrichUploadFunction"))
    print(json.dumps(answer, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child()
    os.environ.update(AWS_ACCESS_KEY_ID="faults", AWS_SECRET_ACCESS_KEY="faults",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = points(args.points, Path(tmp))
    for outcome in outcomes:
        print(outcome)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["DAY", "KEY", "points"]
