"""Cold start: each handler's import from the built artifacts against the boto3 floor.

Baseline (the floor): a fresh Python 3.12 process running ``import boto3; boto3.client("s3")``
- the least any function using S3 pays. Measured: a fresh process importing
``parse_feed`` / ``enrich_upload`` from ``.aws-sam/build`` the way the Lambda runtime does
(function code first, the layer as ``/opt/python``, boto3 from the runtime), with the
environment the template sets (tracing off). Target: handler import <= 1.1x the floor.

Lambda's file system is read-only, so no ``__pycache__`` is written during a cold start: the
processes run with ``PYTHONDONTWRITEBYTECODE=1``. The runtime's boto3 ships compiled, so the
floor's copy is compiled once up front; the layer counts as built (with or without the
bytecode ``sam build`` shipped). ``--compile-layer`` measures a compiled copy of the layer too.

    python -m bench.bench_cold_start [--runs 15] [--build .aws-sam/build] [--compile-layer]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HANDLERS = {"ParseFeedFunction": "parse_feed", "EnrichUploadFunction": "enrich_upload"}
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "none",
    "AWS_SECRET_ACCESS_KEY": "none",
    "STATE_BUCKET": "feedsync-state-example",
    "STATE_TABLE": "feedsync-state-table-example",
    "DATA_SOURCE_ID": "101",
    "MARKETO_BASE_URL": "https://123-ABC-456.mktorest.com",
    "MARKETO_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:marketo",
    "ADOBE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:adobe",
    "POWERTOOLS_SERVICE_NAME": "feedsync",
    "POWERTOOLS_METRICS_NAMESPACE": "feedsync",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "PYTHONDONTWRITEBYTECODE": "1",
}
TIMED = (
    "import time, sys; t = time.perf_counter(); {code}; "
    "sys.stdout.write(str(time.perf_counter() - t))"
)


def find_python312() -> str | None:
    candidates = [
        shutil.which("python3.12"),
        *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def runtime_boto3(python: str, target: Path) -> None:
    """boto3 as the runtime ships it: installed for 3.12 and compiled."""
    if not (target / "boto3").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
             "--python-version", "3.12", "--only-binary=:all:", "boto3"],
            check=True,
        )  # fmt: skip
    subprocess.run([python, "-m", "compileall", "-q", str(target)], check=True)


def timed(python: str, code: str, path: list[Path]) -> float:
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(map(str, path))}
    out = subprocess.run(
        [python, "-S", "-c", TIMED.format(code=code)], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"cold-start bench: {code!r} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout)


def measure(python: str, runs: int, cases: dict[str, tuple[str, list[Path]]]) -> dict[str, float]:
    """Median seconds per case; the cases alternate so machine noise hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (code, path) in cases.items():
            samples[name].append(timed(python, code, path))
    return {name: statistics.median(values) for name, values in samples.items()}


def cases_for(build: Path, layer: Path, runtime: Path) -> dict[str, tuple[str, list[Path]]]:
    cases = {"floor: boto3 + s3 client": ('import boto3; boto3.client("s3")', [runtime])}
    for function, module in HANDLERS.items():
        cases[f"{module} handler"] = (f"import {module}", [build / function, layer, runtime])
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--build", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--compile-layer", action="store_true")
    args = parser.parse_args()
    python = find_python312()
    if python is None:
        print("cold-start bench: SKIPPED - no python3.12 (the Lambda runtime) on this machine")
        return 0
    build = args.build.resolve()
    if not (build / "SharedLayer" / "python").is_dir():
        raise SystemExit(f"cold-start bench: no sam build output in {build}; run `make build`")
    runtime = build.parent / "lambda-runtime-compiled"
    runtime_boto3(python, runtime)
    layer = build / "SharedLayer" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        layers = {"layer as built": layer}
        if args.compile_layer:
            compiled = Path(tmp) / "python"
            shutil.copytree(layer, compiled)
            subprocess.run([python, "-m", "compileall", "-q", str(compiled)], check=True)
            layers["layer compiled"] = compiled
        for label, path in layers.items():
            report(label, measure(python, args.runs, cases_for(build, path, runtime)))
    return 0


def report(label: str, medians: dict[str, float]) -> None:
    floor = medians["floor: boto3 + s3 client"]
    print(f"\n{label} (median of runs, python3.12, tracing off)")
    print(f"{'import':28s} {'ms':>8s}   vs floor (target <= 1.10x)")
    for name, seconds in medians.items():
        print(f"{name:28s} {seconds * 1000:8.1f}   {seconds / floor:5.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
