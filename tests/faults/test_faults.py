"""The fault suite, sampled: kill points before and after external calls of a run, for each
destination and for a re-delivered day, a few for each variant (what goes wrong between runs:
a failure after a re-delivery, another BATCH_SIZE, late verdicts, give-ups, mirror faults, the
S3 export, BDIA ERROR), and every per-call fault. ``make faults`` runs every kill point of
every scenario and prints the figures (tests/faults/sweep.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.harness import Scenario
from tests.faults.percall import per_call_faults
from tests.faults.sweep import SCENARIOS, kill_points

SAMPLE = int(os.environ.get("FAULT_SAMPLE", "21"))  # every 21st kill point in `make test`
# side by side: the cores not already busy with pytest-xdist's other workers
_SHARE = (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
WORKERS = int(os.environ.get("FAULT_WORKERS", str(max(1, _SHARE))))
VARIANT_POINTS = int(os.environ.get("FAULT_VARIANT_POINTS", "2"))  # per variant, spread out
# the core destinations' kill points are sampled every SAMPLE-th; aep (newest) and the variants
# a few points each - `make faults` runs every point of every scenario
CORE = [s for s in SCENARIOS if not s.variant and s.destination != "aep"]
VARIANTS = [s for s in SCENARIOS if s not in CORE]


@pytest.mark.parametrize("scenario", CORE, ids=lambda s: s.name)
def test_kill_points_lose_nothing_and_send_nothing_twice(
    scenario: Scenario, tmp_path: Path
) -> None:
    outcomes = kill_points(scenario, tmp_path, SAMPLE, workers=WORKERS)
    assert len(outcomes) >= 6
    bad = [o for o in outcomes if not o.ok]
    assert not bad, bad[:5]


@pytest.mark.parametrize("scenario", VARIANTS, ids=lambda s: s.name)
def test_between_runs_variants_lose_nothing_and_report_the_truth(
    scenario: Scenario, tmp_path: Path
) -> None:
    """The clean run (checked inside kill_points) and kill points spread over the run."""
    outcomes = kill_points(scenario, tmp_path, points=VARIANT_POINTS, workers=WORKERS)
    assert len(outcomes) == VARIANT_POINTS
    bad = [o for o in outcomes if not o.ok]
    assert not bad, bad[:5]


def test_per_call_faults_lose_nothing_and_send_nothing_twice(tmp_path: Path) -> None:
    outcomes = per_call_faults(tmp_path)
    bad = [o for o in outcomes if not o.ok]
    assert not bad, bad[:5]
