"""Reader benchmark: feedsync's hit scanner against the named baselines, in one run.

    make bench                      # 300,000 rows x 300 columns, 1% escaped rows
    python -m bench.bench_reader --rows 100000

Baselines, each in its own subprocess (so peak RSS is its own):
  decompress  inflate only, single-threaded, with the fastest gzip reader installed (isal, else gzip)
  feedsync    RowScanner + VisitorTally (what the parse step runs)
  csv         stdlib csv.reader configured correctly (tab, QUOTE_NONE, escapechar, newline='')
  pandas      the blog-post approach: read_csv of the whole file, then filter
Prints times, peak memory and ratios, and checks that feedsync and csv agree on every row.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

from bench.memory import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
VISITOR, CRM = ("mcvisid",), "post_evar22"


def generate(rows: int, path: Path) -> list[str]:
    from sandbox import feedgen

    rng = random.Random(42)
    headers = feedgen.column_headers(300)
    keys = {name: i for i, name in enumerate(headers) if name in feedgen.KEY_COLUMNS}
    # ~1.5 KB rows, like real feeds (the sample delivery averages 1.2 KB): most fields empty
    pool = [""] * 20 + ["0", "1", "Y", "::hash::0", "100,101", "en-US,en;q=0.8",
                        "https://example.com/products/widget-9?utm_source=news",
                        "Mozilla/5.0 (X11; Linux x86_64)"]  # fmt: skip
    backgrounds = [[rng.choice(pool) for _ in headers] for _ in range(500)]
    visitors = [f"{rng.randrange(10**37, 10**38):038d}" for _ in range(rows // 8)]
    noise = [feedgen.escape(n) for n in feedgen.NOISE]
    with gzip.open(path, "wb", compresslevel=6) as out:
        batch = []
        for n in range(rows):
            fields = list(rng.choice(backgrounds))
            fields[keys["exclude_hit"]] = "0" if rng.random() > 0.03 else "1"
            fields[keys["hit_source"]] = "1" if rng.random() > 0.05 else rng.choice("25789")
            visitor = rng.choice(visitors) if rng.random() > 0.01 else ""
            fields[keys["mcvisid"]] = visitor
            fields[keys["post_visid_high"]], fields[keys["post_visid_low"]] = (
                visitor[:19],
                visitor[19:],
            )
            fields[keys["post_evar22"]] = f"CRM{rng.randrange(10**6)}" if rng.random() < 0.2 else ""
            if rng.random() < 0.01:  # 1% escaped rows, escapes before the key columns
                fields[5] = rng.choice(noise)
            batch.append("\t".join(fields))
            if len(batch) == 5000 or n == rows - 1:
                out.write(("\n".join(batch) + "\n").encode("iso-8859-1"))
                batch = []
    return headers


# -- the measured workloads (each runs in a child process) ---------------------------------------
def run_decompress(path: Path, headers: list[str]) -> dict:
    """Inflate only, single-threaded, with the fastest reader installed: isal's gzip reader
    (about twice as fast as its zlib-style decompressobj), else the standard library's."""
    try:
        from isal import igzip as lib
    except ImportError:
        import gzip as lib
    total = 0
    with lib.open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            total += len(block)
    return {"library": lib.__name__, "bytes": total}


def run_decompress_threaded(path: Path, headers: list[str]) -> dict:
    """The baseline of the whole-parse measure: isal's threaded gzip reader, reading only."""
    from isal import igzip_threaded

    total = 0
    with igzip_threaded.open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            total += len(block)
    return {"library": "isal.igzip_threaded", "bytes": total}


def delivery_folder(path: Path, headers: list[str], rows: int) -> Path:
    """A one-file delivery around the generated hit file: lookup archive, manifest last."""
    from sandbox import feedgen

    folder = path.with_suffix("").with_suffix(".delivery")
    manifest = folder / "benchrsid_2026-11-20.txt"
    if manifest.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "01-benchrsid_2026-11-20.tsv.gz"
    if not data.exists():
        data.symlink_to(path.resolve())
    lookup = feedgen.lookup_archive(headers)
    (folder / "benchrsid_2026-11-20-lookup_data.tar.gz").write_bytes(lookup)
    text = feedgen.manifest_text(
        {"benchrsid_2026-11-20-lookup_data.tar.gz": lookup}, {data.name: (data.read_bytes(), rows)}
    )
    manifest.write_text(text)
    return folder


def run_parse_cli(path: Path, headers: list[str]) -> dict:
    """``feedsync parse`` of the whole delivery: MD5 and size checks, scan, sorted per-file
    results written, the delivery record (in a state folder, as --state-dir does)."""
    import contextlib
    import io
    import shutil
    import tempfile

    from feedsync.cli import main as cli

    rows = int(path.name.split("-")[-1].split(".")[0])
    folder = delivery_folder(path, headers, rows)
    state = Path(tempfile.mkdtemp(prefix="feedsync-bench-state-"))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli(["parse", str(folder), "--state-dir", str(state)])
    finally:
        shutil.rmtree(state, ignore_errors=True)
    record = json.loads(out.getvalue())
    assert code == 0 and record["complete"], record
    return _summary(record["rows"], record["excluded_rows"], record["visitors_pending"],
                    record["visitors_known"], None)  # fmt: skip


def escaped_file(path: Path, rows: int = 40, escapes: int = 100_000) -> list[str]:
    """Rows holding 100k escaped newlines and tabs each (in a column feedsync does not read),
    between ordinary rows, so they cross the scanner's 1 MiB chunk boundaries."""
    from sandbox import feedgen

    headers = feedgen.column_headers(300)
    if path.exists():
        return headers
    plain = ["" for _ in headers]
    with gzip.open(path, "wb", compresslevel=1) as out:
        for n in range(rows):
            fields = list(plain)
            fields[headers.index("mcvisid")] = f"{n:038d}"
            fields[5] = "\\\n" * escapes if n % 2 else "\\\t" * escapes
            out.write(("\t".join(fields) + "\n").encode())
            for m in range(200):
                fields = list(plain)
                fields[headers.index("mcvisid")] = f"{n * 1000 + m:038d}"
                out.write(("\t".join(fields) + "\n").encode())
    return headers


def _tally_batches(batches, layout, check: bool) -> dict:
    """Tally batches of extracted rows; with check, digest every row for the identity test."""
    from feedsync.datafeed.visitors import VisitorTally

    tally = VisitorTally(layout)
    digest = hashlib.sha256()
    for batch in batches:
        tally.add(batch)
        if check:
            _digest_rows(batch, digest)
    pending, known = len(tally.seen - tally.known), len(tally.known)
    return _summary(
        tally.rows, tally.excluded_rows, pending, known, digest.hexdigest() if check else None
    )


def _digest_rows(rows, digest) -> None:
    for row in rows:
        digest.update(b"\x00".join(row) + b"\n")


def run_feedsync(path: Path, headers: list[str], check: bool = False) -> dict:
    """The production path: native scanner (when built) with read-ahead inflation."""
    from feedsync.datafeed import nativescan
    from feedsync.datafeed.gzipstream import decompressed_chunks
    from feedsync.datafeed.hitfile import tally_hits
    from feedsync.datafeed.visitors import HitLayout

    layout = HitLayout.from_headers(headers, VISITOR, CRM)
    with path.open("rb") as handle:
        tally = tally_hits(decompressed_chunks(handle, str(path)), str(path), layout)
    result = _summary(
        tally.rows, tally.excluded_rows, len(tally.seen - tally.known), len(tally.known), None
    )
    result["scanner"] = nativescan.SCANNER
    return result


def run_python_scanner(path: Path, headers: list[str], check: bool = False) -> dict:
    """The pure-Python scanner (the fallback), optionally digesting every extracted row."""
    from feedsync.datafeed.gzipstream import decompressed_chunks
    from feedsync.datafeed.hits import RowScanner
    from feedsync.datafeed.visitors import HitLayout

    layout = HitLayout.from_headers(headers, VISITOR, CRM)
    scanner = RowScanner(layout.n_columns, layout.wanted, str(path))
    with path.open("rb") as handle:
        return _tally_batches(scanner.rows(decompressed_chunks(handle, str(path))), layout, check)


def run_csv(path: Path, headers: list[str], check: bool = True) -> dict:
    import csv

    from feedsync.datafeed.visitors import HitLayout

    layout = HitLayout.from_headers(headers, VISITOR, CRM)
    wanted = layout.wanted
    with gzip.open(path, "rt", encoding="iso-8859-1", newline="") as text:
        reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        rows = (tuple(row[i].encode("iso-8859-1") for i in wanted) for row in reader)
        return _tally_batches(iter(lambda: list(islice(rows, 10000)), []), layout, check)


def run_pandas(path: Path, headers: list[str]) -> dict:
    import pandas as pd

    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=headers,
        dtype=str,
        quoting=3,
        escapechar="\\",
        encoding="iso-8859-1",
        keep_default_na=False,
    )
    rows = len(frame)
    counted = frame[
        (frame["exclude_hit"].isin(["", "0"])) & (~frame["hit_source"].isin(list("5789")))
    ]
    counted = counted[counted["mcvisid"] != ""]
    known = set(counted.loc[counted["post_evar22"] != "", "mcvisid"])
    pending = set(counted["mcvisid"]) - known
    return _summary(rows, None, len(pending), len(known), None)


def _summary(rows, excluded, pending, known, digest) -> dict:
    return {
        "rows": rows,
        "excluded": excluded,
        "pending": pending,
        "known": known,
        "digest": digest,
    }


def child(name: str, path: str, headers_file: str, check: bool) -> None:
    headers = json.loads(Path(headers_file).read_text())
    func = {
        "decompress": run_decompress,
        "decompress_threaded": run_decompress_threaded,
        "parse_cli": run_parse_cli,
        "feedsync": run_feedsync,
        "python": run_python_scanner,
        "csv": run_csv,
        "pandas": run_pandas,
    }[name]
    start = time.perf_counter()
    if name in ("feedsync", "python"):
        result = func(Path(path), headers, check)
    else:
        result = func(Path(path), headers)
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure(
    name: str, path: Path, headers_file: Path, check: bool = False, repeat: int = 1
) -> dict:
    best = None
    for _ in range(repeat):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_reader",
                "--child",
                name,
                str(path),
                str(headers_file),
                "--check" if check else "--no-check",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument(
        "--cli-rows", type=int, default=1_000_000, help="rows of the whole-parse measure"
    )
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.check)
        return 0

    DATA.mkdir(parents=True, exist_ok=True)
    sizes = {"small": args.rows // 3, "full": args.rows}
    files = {}
    for label, rows in sizes.items():
        path = DATA / f"hits-v2-{rows}.tsv.gz"
        headers_file = DATA / "headers.json"
        if not path.exists():
            print(f"generating {rows:,} rows x 300 columns -> {path.name}", flush=True)
            headers = generate(rows, path)
            headers_file.write_text(json.dumps(headers))
        files[label] = path
    headers_file = DATA / "headers.json"
    full = files["full"]
    print(f"feed: {full.name}, {full.stat().st_size / 1e6:.1f} MB gzip")

    results = {
        "decompress": measure("decompress", full, headers_file, repeat=3),
        "feedsync": measure("feedsync", full, headers_file, repeat=3),
        "feedsync_small": measure("feedsync", files["small"], headers_file),
        "python_scanner": measure("python", full, headers_file, check=True),
        "csv": measure("csv", full, headers_file, check=True),
    }
    if not args.skip_pandas:
        results["pandas"] = measure("pandas", full, headers_file)

    base = results["feedsync"]
    print(f"\nuncompressed: {results['decompress']['bytes'] / 1e6:.0f} MB, rows: {base['rows']:,}")
    print(f"{'run':18s} {'seconds':>8s} {'peak MB':>8s}   ratio")
    for name, r in results.items():
        ratio = r["seconds"] / base["seconds"]
        print(f"{name:18s} {r['seconds']:8.2f} {r['peak_mb']:8.0f}   {ratio:5.2f}x feedsync")
    dec = results["decompress"]
    print(f"\nscanner: {base['scanner']} (the Python scanner is the fallback when it is not built)")
    print(
        f"\nfeedsync / decompress-only ({dec['library']}):   "
        f"{base['seconds'] / dec['seconds']:.2f}x   (target <= 1.6x)"
    )
    print(
        f"csv / feedsync:                          "
        f"{results['csv']['seconds'] / base['seconds']:.2f}x faster (target >= 6x)"
    )
    if "pandas" in results:
        print(
            f"pandas / feedsync:                       "
            f"{results['pandas']['seconds'] / base['seconds']:.2f}x faster (target >= 30x)"
        )
    print(
        f"peak memory {sizes['small']:,} rows -> {sizes['full']:,} rows: "
        f"{results['feedsync_small']['peak_mb']:.0f} MB -> {base['peak_mb']:.0f} MB"
    )
    same = results["python_scanner"]["digest"] == results["csv"]["digest"]
    agree = all(
        results[run][k] == results["csv"][k]
        for run in ("feedsync", "python_scanner")
        for k in ("rows", "excluded", "pending", "known")
    )
    print(f"Python scanner: every extracted row identical to the csv reader's: {same}")
    print(f"feedsync and Python scanner counts and visitor sets equal the csv reader's: {agree}")
    if "pandas" in results:
        print(
            "pandas visitor sets agree:",
            all(results["pandas"][k] == base[k] for k in ("pending", "known")),
        )
    whole = whole_parse(args.cli_rows)
    linear = escaped_rows()
    return 0 if same and agree and whole and linear else 1


def whole_parse(rows: int) -> bool:
    """`feedsync parse` of a delivery against isal's threaded decompression of its data file."""
    path = DATA / f"hits-v2-{rows}.tsv.gz"
    headers_file = DATA / "headers.json"
    if not path.exists():
        print(f"generating {rows:,} rows x 300 columns -> {path.name}", flush=True)
        headers_file.write_text(json.dumps(generate(rows, path)))
    # best of 5, alternating, so a noisy moment on a shared machine hits both sides alike
    dec = cli = None
    for _ in range(5):
        dec = _best(dec, measure("decompress_threaded", path, headers_file))
        cli = _best(cli, measure("parse_cli", path, headers_file))
    assert dec is not None and cli is not None
    ratio = cli["seconds"] / dec["seconds"]
    print(
        f"\nwhole `feedsync parse` ({rows:,} rows x 300 columns, {path.stat().st_size / 1e6:.0f} MB gzip):"
    )
    print(f"  isal threaded decompression only  {dec['seconds']:6.2f} s")
    print(
        f"  feedsync parse (md5, scan, results, record) {cli['seconds']:6.2f} s, peak {cli['peak_mb']:.0f} MB"
    )
    print(f"  parse / decompress-only: {ratio:.2f}x   (target <= 1.5x)")
    return True


def _best(best: dict | None, result: dict) -> dict:
    return result if best is None or result["seconds"] < best["seconds"] else best


def escaped_rows() -> bool:
    """Rows of 100k escaped newlines and tabs across chunk boundaries: native vs Python."""
    from feedsync.datafeed import nativescan

    path = DATA / "escaped-v1.tsv.gz"
    headers_file = DATA / "headers-escaped.json"
    headers_file.write_text(json.dumps(escaped_file(path)))
    python = measure("python", path, headers_file)
    print("\nrows of 100,000 escaped newlines / tabs, across 1 MiB chunk boundaries:")
    print(f"  python scanner  {python['seconds']:6.2f} s")
    if not nativescan.available():
        print("  native scanner  not built (make native)")
        return True
    native = measure("feedsync", path, headers_file)
    agree = all(native[k] == python[k] for k in ("rows", "pending", "known"))
    print(
        f"  native scanner  {native['seconds']:6.2f} s   native / python: "
        f"{native['seconds'] / python['seconds']:.2f}x (target <= 1x); same counts: {agree}"
    )
    return agree


if __name__ == "__main__":
    raise SystemExit(main())
