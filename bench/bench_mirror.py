"""CRM mirror benchmark: 10,000,000 leads (3,000,000 with a visitor id) and 1,000,000 pending
visitors, 10% of them in the mirror.

    make bench                                            # ... then this
    python -m bench.bench_mirror --leads 1000000 --with-id 300000 --pending 100000

Each phase runs in a child process, so its peak RSS is its own:
  build   merge a bulk extract of every lead (any order) into an empty mirror: the external
          sort and the chunk writer (what the first CRM_SOURCE=marketo-mirror run does)
  join    the daily run (dry run, upload files only) with CRM_SOURCE=marketo-mirror against that
          mirror, while a Marketo stand-in counts every request it receives
  small   the same join against a mirror a tenth the size (memory must not follow the mirror)
  dict    the baseline: the file CRM source as it was, every lead with a visitor id in a dict
Baselines printed beside them: the lookup path's calls for the same input, ceil(pending / 300),
and the dict's peak memory. Target: join peak <= 256 MB whatever the mirror's size, 0 calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_enrich import MAPPING, FirstRunLedger, TimedBuilder, write_delivery
from bench.memory import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "mirror"
FIELD = "Adobe_Visitor_ID"
STEP = 2_654_435_761  # odd and not a multiple of 5: n -> n * STEP mod 10**38 is one-to-one


def visitor(n: int) -> str:
    """The n-th visitor id: 38 digits, spread like ECIDs, unique for every n < 10**38."""
    return f"{(n * STEP + 10**37) % 10**38:038d}"


def pending_ids(count: int) -> list[str]:
    return sorted(visitor(n) for n in range(count))


def leads(total: int, with_id: int, pending: int, share: float) -> Iterator[tuple[str, dict]]:
    """An extract: ``total`` leads, ``with_id`` of them carrying a visitor id; the first
    ``pending * share`` of those are pending visitors (every 1/share-th), the rest are not."""
    in_mirror = int(pending * share)
    every = max(1, round(1 / share))
    for n in range(total):
        fields = {"id": str(5_000_000 + n), "Account_Type__c": ("Customer", "Partner")[n % 2],
                  "Industry": ("Retail", "Finance", "Media")[n % 3]}  # fmt: skip
        k = n // 3 if n % 3 == 0 else -1  # every third lead has an id while there are some
        if k < 0 or k >= with_id:
            yield "", fields
        elif k < in_mirror:
            yield visitor(k * every), fields
        else:
            yield visitor(10**12 + k), fields


def child_build(args: argparse.Namespace, root: Path) -> dict[str, object]:
    from feedsync.crm.mirror import Mirror
    from feedsync.storage import LocalStore

    shutil.rmtree(root, ignore_errors=True)
    mirror = Mirror(LocalStore(root), FIELD, ["id", "Account_Type__c", "Industry"])
    started = time.perf_counter()
    extract = leads(args.leads, args.with_id, args.pending, args.share)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)  # the daily sync: one window
    index = mirror.merge(extract, yesterday.isoformat(timespec="seconds"))
    return {"seconds": time.perf_counter() - started, "rows": index.rows,
            "chunks": len(index.chunks), "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def child_join(args: argparse.Namespace, root: Path) -> dict[str, object]:
    from feedsync.crm.bulk_extract import BulkLeadExtract
    from feedsync.crm.marketo import MarketoClient, MarketoSettings
    from feedsync.crm.mirror import Mirror
    from feedsync.crm.mirror_sync import MirrorSync
    from feedsync.crm.sources import MirrorSource
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
    state = DATA / "state"
    write_delivery(pending_ids(args.pending), state)
    # as CRM_SOURCE=marketo-mirror runs: bring the mirror up to date (one day's window from
    # the stand-in's bulk extract), then answer every lookup from it
    client = MarketoClient(
        MarketoSettings(args.url, "marketo-sandbox-client", Secret("marketo-sandbox-secret-0000"))
    )
    mirror = Mirror(LocalStore(root), FIELD, mapping.crm_fields)
    source = MirrorSource(mirror, MirrorSync(BulkLeadExtract(client, poll=0.05), mirror))
    ports = EnrichPorts(
        state=LocalStore(state), ledger=FirstRunLedger(),  # type: ignore[arg-type]
        runs=MemoryRunState(), uploads=MemoryUploadLog(), crm=source, mapping=mapping,
        destinations=[Destination("datasources", TimedBuilder(DataSourcesFiles()),
                                  DrySender("datasources"), dry_run=True)],
    )  # fmt: skip
    started = time.perf_counter()
    summary = run_daily(ports, EnrichSettings(), RunRequest(dry_run=True), Deadline())
    return {"seconds": time.perf_counter() - started, "summary": summary["deliveries"][0],
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def child_dict(args: argparse.Namespace) -> dict[str, object]:
    """The file source before the mirror: every lead with a visitor id in one dict."""
    started = time.perf_counter()
    table = {v: f for v, f in leads(args.leads, args.with_id, args.pending, args.share) if v}
    found = sum(1 for v in pending_ids(args.pending) if v in table)
    return {"seconds": time.perf_counter() - started, "matched": found,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def child(mode: str, args: argparse.Namespace, **override: object) -> dict[str, object]:
    options = {**vars(args), **override, "child": mode}
    command = [sys.executable, "-m", "bench.bench_mirror"]
    command += [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if v != ""]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"bench_mirror {mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=10_000_000)
    parser.add_argument("--with-id", type=int, default=3_000_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.1, help="pending visitors in the mirror")
    parser.add_argument("--child", default="")
    parser.add_argument("--root", default="")
    parser.add_argument("--url", default="")
    return parser.parse_args()


def run_child(args: argparse.Namespace) -> None:
    root = Path(args.root)
    jobs = {"build": lambda: child_build(args, root), "join": lambda: child_join(args, root),
            "dict": lambda: child_dict(args)}  # fmt: skip
    print(json.dumps(jobs[args.child]()))


def main() -> int:
    args = parse_args()
    if args.child:
        run_child(args)
        return 0
    from sandbox.run import Sandbox

    big, small = DATA / "big", DATA / "small"
    print(f"building a mirror of {args.leads:,} leads ({args.with_id:,} with a visitor id) ...")
    built = child("build", args, root=big)
    print("building a mirror a tenth the size ...")
    child("build", args, root=small, leads=args.leads // 10, with_id=args.with_id // 10,
          pending=args.pending // 10)  # fmt: skip
    box = Sandbox.start()  # the Marketo stand-in: any request the join makes is counted
    try:
        print(f"the daily run against the mirror: {args.pending:,} pending visitors ...")
        joined = child("join", args, root=big, url=box.url)
        joined_small = child("join", args, root=small, url=box.url)
        paths = [r.path for r in box.server.received]
        requests = {"lookups": sum(p.startswith("/rest/v1/leads") for p in paths),
                    "bulk": sum(p.startswith("/bulk/") for p in paths)}  # fmt: skip
    finally:
        box.stop()
    print("the dict-based file source (baseline) ...")
    table = child("dict", args)
    return report(args, built, joined, joined_small, table, requests)


def report(args, built, joined, joined_small, table, requests) -> int:  # type: ignore[no-untyped-def]
    summary = joined["summary"]
    ceiling = -(-args.pending // 300)
    calls = requests["lookups"]
    print(f"\nmirror: {built['rows']:,} visitors in {built['chunks']} chunks, built in "
          f"{built['seconds']:.0f} s, peak {built['peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"run: pending {summary['pending']:,}  matched {summary['matched']:,}  "
          f"status {summary['status']}  ({joined['seconds']:.1f} s, with the daily sync: "
          f"{requests['bulk']} bulk extract calls in both runs)\n")  # fmt: skip
    print(f"{'measure':40s} {'mirror':>10s} {'baseline':>10s} {'ratio':>7s}  baseline")
    rows = [
        ("Marketo lookup calls in the run", calls, ceiling, "lookups: ceil(pending / 300)"),
        ("run peak memory (MB)", joined["peak_rss_mb"], table["peak_rss_mb"], "dict of the CRM"),
        ("run peak, mirror 1/10 the size (MB)", joined_small["peak_rss_mb"],
         joined["peak_rss_mb"], "run peak, full mirror"),
        ("matched visitors", summary["matched"], table["matched"], "dict lookups"),
    ]  # fmt: skip
    for name, ours, base, label in rows:
        ratio = float(ours) / float(base) if float(base) else 0.0
        print(f"{name:40s} {float(ours):10.0f} {float(base):10.0f} {ratio:7.2f}  {label}")
    ok = (
        calls == 0
        and float(joined["peak_rss_mb"]) <= 256
        and summary["matched"] == table["matched"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
