"""Daily-run benchmark: 1,000,000 pending visitors, 10% of them in the Marketo stand-in.

    make bench                                  # reader, then this
    python -m bench.bench_enrich --visitors 200000

What it measures (the enrichment runs in a child process so its peak RSS is its own; the
Marketo stand-in serves from this process over loopback):
  calls        Marketo calls made, against the ceiling ceil(visitors / 300)
  window       the most calls the stand-in saw in any window, against the limit N
  memory       peak RSS of the run, against the naive approach (every pending id in a list,
               the matched rows in a pandas DataFrame written with to_csv)
  build        time to build the upload files, against pandas DataFrame(...).to_csv
Time is scaled: Marketo's 20 s window becomes --window seconds (default 0.5) so a run that
needs ~22 minutes of real Marketo time finishes in well under a minute; calls and the calls per
window are what they would be.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.memory import peak_rss_mb

if TYPE_CHECKING:
    from feedsync.state.records import DeliveryRecord

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "enrich"
FIELD = "Adobe_Visitor_ID"
MAPPING = {
    "visitor_id_field": FIELD,
    "success_event": "Event 51",
    "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23", "Industry": "Evar 24"},
}
DAY = "2026-11-20"


def visitor_ids(count: int) -> list[str]:
    rng = random.Random(11)
    return sorted({f"{rng.randrange(10**37, 10**38):038d}" for _ in range(count + count // 100)})[
        :count
    ]


def write_delivery(ids: list[str], root: Path = DATA) -> DeliveryRecord:
    """Per-file results as the parse step writes them: two files, visitors spread over both."""
    from feedsync.parse.results import write_visitors
    from feedsync.state.layout import StateLayout
    from feedsync.state.records import DeliveryRecord, FileCheck, Status
    from feedsync.storage import LocalStore, put_json

    shutil.rmtree(root, ignore_errors=True)
    store = LocalStore(root)
    record = DeliveryRecord(
        delivery=f"acmeprod_{DAY}", rsid="acmeprod", day=DAY, hour=None, folder="adobe/acmeprod/",
        manifest=f"acmeprod_{DAY}.txt", visitor_columns=("mcvisid",), crm_id_column="post_evar22",
        status=Status.COMPLETE, visitors_pending=len(ids), visitors_known=0,
    )  # fmt: skip
    for part in (0, 1):
        name = f"0{part + 1}-acmeprod_{DAY}.tsv.gz"
        key = StateLayout.visitors(record.key, name, f"{part:032d}")
        write_visitors(store, key, ids[part::2], [])
        record.files.append(FileCheck(name, "data", md5_ok=True, size_ok=True, visitors_key=key))
    put_json(store, StateLayout.record(record.key), record.to_json())
    return record


class FirstRunLedger:
    """The ledger as DynamoDB behaves on a first run: nobody known yet, items kept outside the
    function (a dict here would add its own ~150 MB to the function's memory)."""

    def __init__(self) -> None:
        self.recorded = 0

    def entries(
        self, rsid: str, destination: str, ids: object, consistent: bool = True
    ) -> dict[str, object]:
        return {}

    def move(self, rsid: str, destination: str, moves: Iterable[Any]) -> set[str]:
        moved = {m.visitor for m in moves}
        self.recorded += len(moved)
        return moved


def child_run(args: argparse.Namespace) -> None:
    from feedsync.crm.marketo import MarketoClient, MarketoSettings
    from feedsync.crm.ratelimit import Limits, LocalRateLimiter
    from feedsync.crm.sources import MarketoSource
    from feedsync.daily.destinations import Destination
    from feedsync.daily.destinations.datasources import DataSourcesFiles
    from feedsync.daily.destinations.dryrun import DrySender
    from feedsync.daily.mapping import Mapping
    from feedsync.daily.run import EnrichPorts, run_daily
    from feedsync.deadline import Deadline
    from feedsync.secret import Secret
    from feedsync.settings import EnrichSettings, RunRequest
    from feedsync.storage import LocalStore
    from tests.fakes import MemoryRunState, MemoryUploadLog

    mapping = Mapping.from_json(json.dumps(MAPPING), "bench mapping")
    # margin: stamps are taken before a call is sent; 10% of the scaled window covers send time
    # and scheduling jitter on a loaded 2-core machine (the product uses 0.5 s of a real 20 s)
    limiter = LocalRateLimiter(
        Limits(calls=args.calls, window=args.window, concurrency=5, margin=0.1 * args.window)
    )
    client = MarketoClient(
        MarketoSettings(args.url, "marketo-sandbox-client", Secret("marketo-sandbox-secret-0000")),
        limiter=limiter,
    )
    builder = TimedBuilder(DataSourcesFiles())
    ports = EnrichPorts(
        state=LocalStore(DATA),
        ledger=FirstRunLedger(),  # type: ignore[arg-type]
        runs=MemoryRunState(),
        uploads=MemoryUploadLog(),
        crm=MarketoSource(client, FIELD, mapping.crm_fields, workers=5),
        mapping=mapping,
        destinations=[Destination("datasources", builder, DrySender("datasources"), dry_run=True)],
    )
    started = time.perf_counter()
    summary = run_daily(
        ports, EnrichSettings(batch_size=args.batch), RunRequest(dry_run=True), Deadline()
    )
    elapsed = time.perf_counter() - started
    print(json.dumps({"summary": summary["deliveries"][0], "seconds": elapsed,
                      "build_seconds": builder.seconds, "calls": client.stats.calls,
                      "retries": client.stats.retries, "peak_rss_mb": peak_rss_mb()}))  # fmt: skip


class TimedBuilder:
    """The destination's file builder, timed (the "building the upload files" figure)."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.builder, name)
        if not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def child_naive(args: argparse.Namespace) -> None:
    """The one-off-script way: every pending id in memory, then pandas for the upload file."""
    import pandas as pd

    from feedsync.parse.results import load_record, pending_visitors
    from feedsync.storage import LocalStore

    store = LocalStore(DATA)
    record = load_record(store, f"adobe/acmeprod/acmeprod_{DAY}")
    assert record is not None
    pending = list(pending_visitors(store, record))
    matched = pending[:: args.every]
    rng = random.Random(5)
    rows = {
        "Date": ["11/20/2026/12/00/00"] * len(matched),
        "transactionID": matched,
        "Event 51": [1] * len(matched),
        "Evar 22": [str(1_000_000 + n) for n in range(len(matched))],
        "Evar 23": [rng.choice(("Customer", "Partner", "Prospect")) for _ in matched],
        "Evar 24": [rng.choice(("Retail", "Finance", "")) for _ in matched],
    }
    started = time.perf_counter()
    frame = pd.DataFrame(rows)
    text = frame.to_csv(sep="\t", index=False)
    build = time.perf_counter() - started
    print(
        json.dumps(
            {
                "build_seconds": build,
                "bytes": len(text),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def child(mode: str, args: argparse.Namespace, url: str = "") -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "bench.bench_enrich",
        f"--child={mode}",
        f"--url={url}",
        f"--calls={args.calls}",
        f"--window={args.window}",
        f"--batch={args.batch}",
        f"--every={args.every}",
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument(
        "--every", type=int, default=10, help="every Nth pending visitor is in Marketo"
    )
    parser.add_argument("--calls", type=int, default=50, help="N: Marketo calls allowed per window")
    parser.add_argument(
        "--window", type=float, default=0.5, help="seconds standing in for Marketo's 20 s"
    )
    parser.add_argument("--batch", type=int, default=15_000)
    parser.add_argument("--child", default="")
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    if args.child == "run":
        child_run(args)
        return 0
    if args.child == "naive":
        child_naive(args)
        return 0

    from sandbox.run import Sandbox

    print(f"generating {args.visitors:,} pending visitors ...", flush=True)
    ids = visitor_ids(args.visitors)
    write_delivery(ids)
    box = Sandbox.start(marketo={"calls_per_window": 100, "window": args.window, "concurrency": 10})
    for n, visitor in enumerate(ids[:: args.every]):
        box.marketo.leads[visitor] = [
            {
                "id": 1_000_000 + n,
                FIELD: visitor,
                "Account_Type__c": ("Customer", "Partner; Gold")[n % 2],
                "Industry": "Retail",
            }
        ]
    print(
        f"running the daily step (dry run, files only; window {args.window:g} s for 20 s) ...",
        flush=True,
    )
    run = child("run", args, box.url)
    window_max = box.marketo.max_calls_in_window()
    refused = dict(box.marketo.refused)
    box.stop()
    naive = child("naive", args)
    summary = run["summary"]
    assert isinstance(summary, dict)
    ceiling = -(-args.visitors // 300)
    print()
    print(
        f"pending {summary['pending']:,}  matched {summary['matched']:,}  uploaded rows {summary['uploaded_rows']:,}  "
        f"status {summary['status']}  ({run['seconds']:.1f} s; Marketo refusals: {refused or 'none'})"
    )
    print(f"{'measure':34s} {'feedsync':>12s} {'baseline':>12s} {'ratio':>8s}  baseline")
    rows = [
        ("Marketo calls", run["calls"], ceiling, "ceiling N/300"),
        (f"most calls in any {args.window:g} s window", window_max, args.calls, "limit N"),
        (
            "peak memory (MB)",
            run["peak_rss_mb"],
            naive["peak_rss_mb"],
            "list of ids + pandas to_csv",
        ),
        (
            "build upload files (s)",
            run["build_seconds"],
            naive["build_seconds"],
            "pandas DataFrame.to_csv",
        ),
    ]
    for name, ours, base, label in rows:
        ours_f, base_f = float(ours), float(base)  # type: ignore[arg-type]
        print(f"{name:34s} {ours_f:12.2f} {base_f:12.2f} {ours_f / base_f:8.2f}  {label}")
    return 0 if summary["status"] == "complete" and window_max <= args.calls else 1


if __name__ == "__main__":
    raise SystemExit(main())
