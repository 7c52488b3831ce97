"""A delivery with more data files than a process may open (finding 13): 1,100 data files
merged under a descriptor limit of 256 (Lambda's is 1,024), in a child process so the limit
does not touch the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FILES = 1_100

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, threading, time
    from feedsync.parse.results import delivery_visitors, write_visitors
    from feedsync.state.records import DeliveryRecord, FileCheck, HitCounts, Status
    from feedsync.storage import LocalStore

    root, files, limit, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = LocalStore(root)
    checks = []
    for n in range(files):
        key = f"results/x/f{n:05d}.visitors.gz"
        # 20 visitors a file; every visitor in two neighbouring files; known in one of them
        ids = [f"{(n * 10 + i):038d}" for i in range(20)]
        write_visitors(store, key, ids[:15], ids[15:])
        checks.append(FileCheck(f"{n:05d}-rs_2026-11-20.tsv.gz", "data", True, True, 20, True,
                                counts=HitCounts(20, 20), visitors_key=key))
    record = DeliveryRecord("rs_2026-11-20", "rs", "2026-11-20", None, "x/", "m", ("mcvisid",),
                            "post_evar22", files=checks, status=Status.COMPLETE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    peak, done = [0], threading.Event()

    def sample():  # open descriptors, every millisecond, in every phase of the merge
        while not done.wait(0.001):
            try:
                peak[0] = max(peak[0], len(os.listdir("/proc/self/fd")))
            except OSError:
                pass

    threading.Thread(target=sample, daemon=True).start()
    started, out = time.perf_counter(), []
    try:
        for visitor, known in delivery_visitors(store, record, width):
            out.append((visitor, known))
    except OSError as exc:
        print(json.dumps({"error": str(exc)}))
        sys.exit(0)
    done.set()
    peak = peak[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"visitors": len(out), "known": sum(k for _, k in out),
                      "sorted": out == sorted(out), "peak_fds": peak, "peak_rss_mb": rss,
                      "seconds": round(time.perf_counter() - started, 2)}))
    """
)


def merge_in_child(tmp_path: Path, width: int, limit: int = 256) -> dict[str, object]:
    root = Path(__file__).resolve().parents[2]
    env_path = f"{root / 'layers' / 'shared'}"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(FILES), str(limit), str(width)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=600,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_1100_data_files_merge_under_a_descriptor_limit_of_256(tmp_path: Path) -> None:
    found = merge_in_child(tmp_path / "grouped", width=64)
    assert "error" not in found, found
    # visitors 0 .. FILES*10+9: each of the first FILES*10+10 ids once, in order
    assert found["visitors"] == FILES * 10 + 10 and found["sorted"] is True
    known = {10 * n + i for n in range(FILES) for i in range(15, 20)}  # known in any file
    assert found["known"] == len(known)
    assert isinstance(found["peak_fds"], int) and found["peak_fds"] < 256


def test_without_groups_the_same_merge_runs_out_of_descriptors(tmp_path: Path) -> None:
    found = merge_in_child(tmp_path / "flat", width=10_000)
    assert "Too many open files" in str(found.get("error")), found
