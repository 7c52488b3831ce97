"""Scale benchmark: the daily run through the real EnrichUploadFunction handler on moto and the
stand-ins, every AWS, Adobe and Marketo call counted by operation.

    make bench-scale                       # 10 k, 100 k, 1 M pending visitors
    python -m bench.bench_scale --sizes 10000,100000 --modes file,marketo

For each size and CRM mode (10% of the pending visitors in the CRM, Data Sources as the
destination): a first day, then a second day with the same visitors (nothing changed). Prints
calls per 1,000 pending visitors by operation and the ratio between sizes (flat work is 1.0),
DynamoDB read and write units per 1,000 (from each request's shape, as DynamoDB bills them:
a strongly consistent read of an item under 4 KB is 1 unit, an eventually consistent one 0.5,
a write under 1 KB 1 unit, a transactional one 2), then the same with forced continuations
(the last invocation's calls against the second's: an invocation's work must not grow with how
far the day has got), then a model for 1 M, 20 M and 100 M pending visitors a day.

Marketo's 20 s window is scaled (MARKETO_WINDOW_SECONDS) so calls and calls per window are what
they would be, without the waiting; lookups run on one thread (moto's in-process DynamoDB,
which the shared rate limiter uses, is not thread-safe). The delivery's visitor streams are written as the parse
step writes them (its own benchmark is bench_reader).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY1, DAY2 = "2026-11-20", "2026-11-21"
MATCHED_EVERY = 10
# list prices (us-east-1, on-demand, 2026): DynamoDB per million units, S3 per 1,000 requests,
# Lambda per GB-second; a run's AWS bill is dominated by these
PRICE = {"rru": 0.125, "wru": 0.625, "s3_get": 0.0004, "s3_put": 0.005, "lambda_gbs": 0.0000166667}


@dataclasses.dataclass
class Counts:
    calls: Counter[str] = dataclasses.field(default_factory=Counter)
    rru: float = 0.0  # DynamoDB read request units
    wru: float = 0.0  # write request units
    seconds: float = 0.0

    def add(self, other: Counts) -> None:
        self.calls.update(other.calls)
        self.rru += other.rru
        self.wru += other.wru
        self.seconds += other.seconds


def _units(operation: str, params: dict[str, Any]) -> tuple[float, float]:
    """Read and write units a DynamoDB request costs (items taken as under 1 KB / 4 KB, which
    the ledger's and the walk's items are; Query bills by size read, ~1 KB an item here)."""
    if operation == "BatchGetItem":
        reads = 0.0
        for table in params["RequestItems"].values():
            reads += len(table["Keys"]) * (1.0 if table.get("ConsistentRead") else 0.5)
        return reads, 0.0
    if operation == "GetItem":
        return (1.0 if params.get("ConsistentRead") else 0.5), 0.0
    if operation == "Query":
        return 1.0, 0.0  # at least one unit a page (pages are counted as calls)
    if operation == "TransactWriteItems":
        return 0.0, 2.0 * len(params["TransactItems"])
    if operation == "BatchWriteItem":
        return 0.0, float(sum(len(v) for v in params["RequestItems"].values()))
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        item = params.get("Item") or {}
        size = len(json.dumps(item, default=str))
        return 0.0, float(max(1, math.ceil(size / 1024)))
    return 0.0, 0.0


@contextmanager
def counting(into: Callable[[], Counts]) -> Iterator[None]:
    """Every AWS API call and every HTTP request of this process, into ``into()``."""
    import botocore.client
    import requests

    aws = botocore.client.BaseClient._make_api_call
    http = requests.Session.send

    def api(self: Any, operation: str, params: Any) -> Any:
        service = self.meta.service_model.service_name
        counts = into()
        counts.calls[f"aws {service}.{operation}"] += 1
        if service == "dynamodb":
            read, write = _units(operation, params)
            counts.rru += read
            counts.wru += write
        return aws(self, operation, params)

    def send(self: Any, request: Any, **kw: Any) -> Any:
        path = (request.path_url or "").split("?")[0]
        into().calls[f"http {request.method} {_template(path)}"] += 1
        return http(self, request, **kw)

    botocore.client.BaseClient._make_api_call = api  # type: ignore[method-assign]
    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = aws  # type: ignore[method-assign]
        requests.Session.send = http  # type: ignore[method-assign]


def _template(path: str) -> str:
    parts = [("{id}" if any(c.isdigit() for c in p) and len(p) > 6 else p) for p in path.split("/")]
    return "/".join(parts)


def _ids(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return sorted({f"{rng.randrange(10**37, 10**38):038d}" for _ in range(count + count // 50)})[
        :count
    ]


def _deliver(world: Any, ids: list[str], day: str) -> None:
    """The delivery as the parse step leaves it: two data files' sorted visitor streams and the
    verified record (the parse step's own cost is bench_reader's)."""
    from feedsync.parse.results import write_visitors
    from feedsync.state import todo
    from feedsync.state.layout import StateLayout
    from feedsync.state.records import DeliveryRecord, FileCheck, Status
    from feedsync.storage import put_json

    record = DeliveryRecord(
        delivery=f"acmeprod_{day}", rsid="acmeprod", day=day, hour=None, folder="adobe/acmeprod/",
        manifest=f"acmeprod_{day}.txt", visitor_columns=("mcvisid",), crm_id_column="post_evar22",
        status=Status.COMPLETE, visitors_pending=len(ids), visitors_known=0,
        closed_at=f"{day}T23:00:00+00:00",
    )  # fmt: skip
    for part in (0, 1):
        name = f"0{part + 1}-acmeprod_{day}.tsv.gz"
        key = StateLayout.visitors(record.key, name, f"{part:02d}{day.replace('-', ''):0>30}")
        index = write_visitors(world.state, key, ids[part::2], [])
        record.files.append(FileCheck(name, "data", md5_ok=True, size_ok=True, visitors_key=key,
                                      visitors_index=tuple(index)))  # fmt: skip
    put_json(world.state, StateLayout.record(record.key), record.to_json())
    todo.mark(world.state, record.key, record.closed_at, "delivered")


def _crm(world: Any, matched: list[str], mode: str) -> None:
    if mode == "file":
        lines = ["Adobe_Visitor_ID,id,Account_Type__c,Industry"]
        lines += [f"{v},{n},Customer,Retail" for n, v in enumerate(matched)]
        world.state.put("crm/export.csv", ("\n".join(lines) + "\n").encode())
    else:
        for n, visitor in enumerate(matched):
            world.box.marketo.leads[visitor] = [{"id": n, "Adobe_Visitor_ID": visitor,
                                                 "Account_Type__c": "Customer",
                                                 "Industry": "Retail"}]  # fmt: skip


class Budget:
    """A Lambda context whose remaining time runs out after ``batches`` batches (forced
    continuations), or never."""

    def __init__(self, batches: int | None) -> None:
        from sandbox.lambda_context import FakeLambdaContext

        self.left = batches
        self.context = FakeLambdaContext("EnrichUploadFunction")

    def context_for(self) -> Any:
        budget = self

        class Short(type(self.context)):  # type: ignore[misc]
            def get_remaining_time_in_millis(self) -> int:
                return 31_000 if budget.left is not None and budget.left <= 0 else 900_000

        return Short("EnrichUploadFunction")


def run_size(
    size: int, mode: str, workdir: Path, continuations: int | None = None, batch: int = 15000
) -> dict[str, Any]:
    from moto import mock_aws

    from sandbox.run import Sandbox
    from sandbox.world import World

    box = Sandbox.start(bdia_interval=0.0, bdia_group_interval=0.0, jobs_page_size=500,
                        marketo={"calls_per_window": 100, "window": 0.05,
                                 "concurrency": 10})  # fmt: skip
    try:
        with mock_aws():
            env = {"ADOBE_SETTLE_SECONDS": "0", "BATCH_SIZE": str(batch), "POWERTOOLS_LOG_LEVEL":
                   os.environ.get("BENCH_LOG_LEVEL", "CRITICAL"), "MARKETO_WINDOW_SECONDS": "0.05", "MARKETO_CONCURRENCY": "1",
                   "MAX_CONTINUATIONS": "100"}  # fmt: skip
            if mode == "file":
                env.update(CRM_SOURCE="file", CRM_FILE="s3://feedsync-state-world/crm/export.csv")
            world = World(box, workdir, env=env)
            ids = _ids(size)
            matched = ids[::MATCHED_EVERY]
            _crm(world, matched, mode)
            _deliver(world, ids, DAY1)
            first = _invocations(world, continuations, size)
            between = _verdicts(world)  # the hours between the days: Adobe decides day one
            _deliver(world, ids, DAY2)  # the same visitors the next day: nothing changed
            second = _invocations(world, None, size)
            report = world.report(f"adobe/acmeprod/acmeprod_{DAY1}")
            if report["matched"] != len(matched):
                raise AssertionError(
                    f"{mode} {size:,}: matched {report['matched']} of "
                    f"{len(matched)}: {report['status']} {report.get('error')}"
                )
            return {
                "size": size,
                "mode": mode,
                "first": first,
                "second": second,
                "between": between,
            }
    finally:
        box.stop()


def _invocations(world: Any, every: int | None, size: int) -> list[Counts]:
    """Invocations until the day is done; with ``every``, each one runs out of time after that
    many batches (a continuation follows)."""
    from feedsync.daily import delivery

    out: list[Counts] = []
    current: list[Counts] = [Counts()]
    budget = Budget(every)
    original = delivery.DeliveryRun._count

    def counted(self: Any, batch: Any, outcome: Any) -> None:
        if budget.left is not None:
            budget.left -= 1
        original(self, batch, outcome)

    delivery.DeliveryRun._count = counted  # type: ignore[method-assign]
    event: dict[str, Any] = {}
    try:
        for _ in range(200):
            budget.left = every
            current[0] = Counts()
            started = time.perf_counter()
            with counting(lambda: current[0]):
                summary = world.invoke(event, budget.context_for())
            current[0].seconds = time.perf_counter() - started
            out.append(current[0])
            if not summary.get("continued"):
                break
            event = world.lambda_calls.events[-1]
    finally:
        delivery.DeliveryRun._count = original  # type: ignore[method-assign]
    return out


def _verdicts(world: Any) -> list[Counts]:
    """Scheduled runs until Adobe has decided on every file of day one (no delivery to walk:
    reconciliation alone), counted apart from either day."""
    out: list[Counts] = []
    for _ in range(6):
        counts = Counts()
        with counting(lambda held=counts: held):  # type: ignore[misc]
            world.invoke({})
        out.append(counts)
        report = world.report(f"adobe/acmeprod/acmeprod_{DAY1}")
        if not (report.get("adobe") or {}).get("awaiting_verdict"):
            break
    return out


def _total(runs: list[Counts]) -> Counts:
    total = Counts()
    for run in runs:
        total.add(run)
    return total


def _per_thousand(counts: Counts, size: int) -> dict[str, float]:
    out = {k: v * 1000 / size for k, v in counts.calls.items()}
    out["DynamoDB read units"] = counts.rru * 1000 / size
    out["DynamoDB write units"] = counts.wru * 1000 / size
    return out


def print_sizes(results: list[dict[str, Any]]) -> None:
    for mode in sorted({r["mode"] for r in results}):
        rows = [r for r in results if r["mode"] == mode]
        for day in ("first", "second"):
            print(f"\n== CRM_SOURCE={mode}, {day} day: per 1,000 pending visitors ==")
            tables = [(r["size"], _per_thousand(_total(r[day]), r["size"])) for r in rows]
            names = sorted({k for _, t in tables for k in t})
            head = "".join(f"{size:>12,}" for size, _ in tables)
            print(f"{'operation':<58}{head}   ratio last/first")
            for name in names:
                values = [t.get(name, 0.0) for _, t in tables]
                ratio = values[-1] / values[0] if values[0] else float("inf") if values[-1] else 1
                cells = "".join(f"{v:>12.2f}" for v in values)
                print(f"{name:<58}{cells}   {ratio:.2f}")
            times = "".join(f"{_total(r[day]).seconds:>11.1f}s" for r in rows)
            print(f"{'wall time':<58}{times}")


def print_continuations(result: dict[str, Any]) -> None:
    runs: list[Counts] = result["first"]
    print(f"\n== forced continuations: {result['size']:,} pending, {len(runs)} invocations ==")
    names = sorted({k for r in runs for k in r.calls})
    print(f"{'operation':<58}" + "".join(f"{n + 1:>7}" for n in range(len(runs))))
    for name in names:
        print(f"{name:<58}" + "".join(f"{r.calls.get(name, 0):>7}" for r in runs))
    if len(runs) >= 4:
        total = [sum(r.calls.values()) for r in runs]
        second, third, last = total[1], total[2], total[-2]
        print(f"calls, second invocation {second}, last full one {last}: ratio "
              f"{last / second:.2f}; third {third}, last full one: ratio {last / third:.2f} "
              "(the stand-in decides a file at its second look: from the third invocation on, "
              "each one reads the verdicts of as many files as it sends)")  # fmt: skip


def print_model(results: list[dict[str, Any]]) -> None:
    """Cost a month and wall time at 1 M, 20 M, 100 M pending visitors a day, from the largest
    measured size's per-visitor figures."""
    print("\n== model (from the largest measured size; 30 days; list prices) ==")
    for mode in sorted({r["mode"] for r in results}):
        biggest = max((r for r in results if r["mode"] == mode), key=lambda r: r["size"])
        first = _total(biggest["first"])
        per = biggest["size"]
        s3_get = sum(v for k, v in first.calls.items() if k.endswith(("GetObject", "HeadObject")))
        s3_put = sum(v for k, v in first.calls.items()
                     if k.endswith(("PutObject", "ListObjectsV2", "DeleteObject")))  # fmt: skip
        for daily in (1_000_000, 20_000_000, 100_000_000):
            scale = daily / per
            dynamo = (first.rru * PRICE["rru"] + first.wru * PRICE["wru"]) / 1e6 * scale
            s3 = (s3_get * PRICE["s3_get"] + s3_put * PRICE["s3_put"]) / 1000 * scale
            seconds = first.seconds * scale
            lambda_cost = seconds * 1.0 * PRICE["lambda_gbs"]  # 1 GB function
            month = 30 * (dynamo + s3 + lambda_cost)
            print(
                f"CRM_SOURCE={mode:<15} {daily:>12,}/day: ${month:>9,.0f}/month "
                f"(DynamoDB ${30 * dynamo:,.0f}, S3 ${30 * s3:,.0f}, Lambda "
                f"${30 * lambda_cost:,.0f}); one invocation chain {seconds / 3600:.1f} h"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--modes", default="file,marketo")
    parser.add_argument("--continuations", type=int, default=10,
                        help="forced continuations over the middle size (0: skip)")  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            for size in sizes:
                started = time.perf_counter()
                results.append(run_size(size, mode, Path(tmp) / f"{mode}-{size}"))
                print(f"  {mode} {size:,}: {time.perf_counter() - started:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        print_sizes(results)
        if args.continuations:
            middle = sizes[len(sizes) // 2] if len(sizes) > 1 else sizes[0]
            batch = max(300, middle // args.continuations)  # one batch an invocation
            forced = run_size(middle, args.modes.split(",")[0], Path(tmp) / "cont", 1, batch)
            print_continuations(forced)
        print_model(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
