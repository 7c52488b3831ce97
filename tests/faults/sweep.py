"""The fault sweep: every kill point of a run, per destination and for a re-delivered day, plus
per-call faults. ``make faults`` runs all of it and prints the figures; ``make test`` runs a
sample (every ``FAULT_SAMPLE``-th kill point) through tests/faults/test_faults.py.

    python -m tests.faults.sweep [--sample N] [--scenario datasources+redelivery]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faults.harness import (
    DESTINATIONS,
    Installation,
    Outcome,
    Scenario,
    check,
    run_with_kill,
)

SCENARIOS = [Scenario(d, redelivered=r) for d in DESTINATIONS for r in (False, True)]
TWO_PROCESS_POINTS = 10  # tests/faults/concurrent.py: the second process 0 .. 0.45 s later
# what goes wrong between runs (tests/faults/harness.py VARIANTS), around every kill point
SCENARIOS += [
    Scenario("datasources", redelivered=True, variant="fail-after-redelivery"),
    Scenario("datasources", variant="batch-size"),
    Scenario("datasources", variant="late-verdicts"),
    Scenario("datasources", variant="give-up", visitors=300),
    Scenario("datasources", variant="mirror-lost-create"),
    Scenario("datasources", variant="mirror-lost-enqueue"),
    Scenario("datasources", variant="mirror-1029"),
    Scenario("datasources", variant="s3-export"),
    Scenario("bdia", variant="bdia-error"),
    Scenario("datasources", variant="corrupt-resend", visitors=300),
    Scenario("datasources", variant="older-generation"),
    Scenario("datasources", variant="lost-then-redelivery"),
    Scenario("datasources", variant="forget"),
    Scenario("datasources", variant="retry-given-up", visitors=300),
    Scenario("datasources", variant="destination-added"),
    Scenario("datasources", variant="destination-removed"),
    Scenario("datasources", variant="sharded"),
    Scenario("datasources", redelivered=True, variant="sharded"),
]


@contextmanager
def installation(scenario: Scenario, workdir: Path) -> Iterator[Installation]:
    """A fresh moto account and a fresh sandbox for one scenario."""
    from moto import mock_aws

    from sandbox.adobe import ISSUED_TOKEN_HOOKS
    from sandbox.run import Sandbox

    box = Sandbox.start(
        bdia_interval=0.0,
        bdia_group_interval=0.0,
        jobs_page_size=50,
        marketo={"calls_per_window": 100, "window": 20.0, "concurrency": 10},
    )
    try:
        with mock_aws():
            yield Installation(box, workdir, scenario)
    finally:
        box.stop()
        del ISSUED_TOKEN_HOOKS[:]  # tests register their secret scanner again


def count_calls(scenario: Scenario, workdir: Path) -> int:
    with installation(scenario, workdir / "clean") as install:
        calls, _ = run_with_kill(install, None, False)
        outcome = check(install, scenario.name, "clean", 1)
        if not outcome.ok:
            raise AssertionError(f"{scenario.name}: the clean run is not exact: {outcome}")
        return calls


def _one_point(job: tuple[Scenario, Path, int, bool]) -> Outcome:
    scenario, workdir, index, after = job
    with installation(scenario, workdir) as install:
        _, invocations = run_with_kill(install, index, after)
        name = f"{'after' if after else 'before'} call {index}"
        return check(install, scenario.name, name, invocations)


def kill_points(
    scenario: Scenario,
    workdir: Path,
    sample: int = 1,
    points: int | None = None,
    workers: int = 1,
    offset: int = 0,
) -> list[Outcome]:
    """Every ``sample``-th kill point of the scenario from ``offset`` (or ``points`` of them,
    spread evenly over the run from ``offset``), each in a fresh installation; ``workers``
    processes side by side."""
    total = count_calls(scenario, workdir)
    every = [(i, after) for i in range(total) for after in (False, True)]
    if points is None:
        chosen = every[offset % sample :: sample]
    else:
        step = max(1, len(every) // points)
        chosen = every[offset % step :: step][:points]
    jobs = [(scenario, workdir / f"k{n}", i, after) for n, (i, after) in enumerate(chosen)]
    if workers <= 1:
        return [_one_point(job) for job in jobs]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_env) as pool:
        return pool.map(_one_point, jobs, chunksize=1)


def commit_offset(sample: int) -> tuple[int, str]:
    """Where a sampled sweep starts: the commit id modulo ``sample`` (``FAULT_OFFSET`` wins), so
    that over a few commits every kill point is run, not the same 1/sample for ever."""
    import subprocess

    if os.environ.get("FAULT_OFFSET"):
        return int(os.environ["FAULT_OFFSET"]) % sample, "FAULT_OFFSET"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return 0, "no git commit"
    return int(head, 16) % sample, f"commit {head[:12]}"


def _worker_env() -> None:
    import io
    import sys

    os.environ.update(AWS_ACCESS_KEY_ID="faults", AWS_SECRET_ACCESS_KEY="faults",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    sys.stdout = io.StringIO()  # the functions' own log lines


def env_in(env: dict[str, str]) -> Callable[[], None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)

    def restore() -> None:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    return restore


def report(outcomes: list[Outcome], seconds: float, scenarios: int) -> str:
    bad = [o for o in outcomes if not o.ok]
    by_scenario: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_scenario.setdefault(o.scenario, []).append(o)
    lines = [
        f"{name:<46} {len(group):>4} points  dup {sum(o.duplicates for o in group)}  "
        f"lost {sum(o.lost for o in group)}  report {sum(o.report_mismatch for o in group)}"
        for name, group in by_scenario.items()
    ]
    lines += [
        f"scenarios run:        {scenarios}",
        f"kill points:          {len(outcomes)}",
        f"duplicates:           {sum(o.duplicates for o in outcomes)}",
        f"visitors lost:        {sum(o.lost for o in outcomes)}",
        f"report mismatches:    {sum(o.report_mismatch for o in outcomes)}",
        f"harmless repeats:     {sum(o.harmless_repeats for o in outcomes)} "
        "(Target batches written twice with the same values; Target has no lookup)",
        f"slowest recovery:     {max((o.invocations for o in outcomes), default=0)} invocations",
        f"time:                 {seconds:.0f} s",
    ]
    lines += [f"FAILED {o.scenario} {o.point}: {o}" for o in bad[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=1, help="every Nth kill point (1 = all)")
    parser.add_argument(
        "--offset", type=int, help="the first kill point of a sample (default: from the commit id)"
    )
    parser.add_argument("--scenario", help="only this one, e.g. bdia+redelivery")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes side by side"
    )
    args = parser.parse_args(argv)
    restore = env_in(
        {
            "AWS_ACCESS_KEY_ID": "faults",
            "AWS_SECRET_ACCESS_KEY": "faults",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    offset, source = commit_offset(args.sample)
    if args.offset is not None:
        offset, source = args.offset % args.sample, "--offset"
    if args.sample > 1:
        print(f"every {args.sample}th kill point from offset {offset} ({source})", flush=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    chosen = [s for s in SCENARIOS if args.scenario in (None, s.name)]
    if args.scenario and not chosen:
        names = ", ".join(s.name for s in SCENARIOS)
        parser.error(f"no scenario {args.scenario!r}; there are: {names}")
    from tests.faults.percall import per_call_faults

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        for scenario in chosen:
            done = kill_points(
                scenario,
                Path(tmp) / scenario.name,
                args.sample,
                workers=args.workers,
                offset=offset,
            )
            outcomes += done
            print(
                f"  {scenario.name}: {len(done)} kill points, duplicates "
                f"{sum(o.duplicates for o in done)}, lost {sum(o.lost for o in done)}, report "
                f"mismatches {sum(o.report_mismatch for o in done)}, failed "
                f"{sum(not o.ok for o in done)} ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        outcomes += per_call_faults(Path(tmp) / "per-call")
        if args.scenario is None:  # two invocations in two processes at once
            from tests.faults.concurrent import points

            outcomes += points(TWO_PROCESS_POINTS, Path(tmp) / "two-processes")
    restore()
    print(report(outcomes, time.monotonic() - started, len(chosen) + 2))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
