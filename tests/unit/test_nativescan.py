"""The native scanner must give exactly what the Python scanner gives, on every kind of input."""

from __future__ import annotations

import ctypes
import importlib.util
import random
import subprocess
import sys

import pytest

from feedsync.datafeed import nativescan
from feedsync.datafeed.hits import RowScanner
from feedsync.datafeed.visitors import HitLayout, VisitorTally
from feedsync.errors import CorruptFileError
from sandbox import feedgen

pytestmark = pytest.mark.skipif(
    not nativescan.available(),
    reason=f"native scanner not built ({nativescan.LIBRARY}); `make native` builds it",
)


def tallies(raw: bytes, layout: HitLayout, chunk_sizes=(1 << 20,), seed=1):
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(raw):
        size = rng.choice(chunk_sizes)
        chunks.append(raw[pos : pos + size])
        pos += size
    native = VisitorTally(layout)
    nativescan.NativeScan(layout, native, "f.tsv.gz").run(chunks)
    python = VisitorTally(layout)
    for batch in RowScanner(layout.n_columns, layout.wanted, "f.tsv.gz").rows(chunks):
        python.add(batch)
    return native, python


def same(native: VisitorTally, python: VisitorTally) -> None:
    for name in ("rows", "excluded_rows", "rows_without_visitor", "known", "seen"):
        assert getattr(native, name) == getattr(python, name), name


@pytest.fixture(scope="module")
def generated():
    headers = feedgen.column_headers(300)
    rng, hits = feedgen.noisy_hits(4000, seed=9, n_visitors=500, every=25)
    # escapes inside interpreted columns: the native scanner hands these rows to Python
    hits[10].visitor = "12345\\678\t9"
    hits[11].crm_id = "tab\tin crm"
    hits[12].visitor, hits[12].crm_id = "555\n000", ""
    for hit in hits[10:13]:
        hit.exclude_hit, hit.hit_source = "0", "1"
    return headers, hits, feedgen.render(hits, headers, rng)


@pytest.mark.parametrize("chunk_sizes", [(1 << 20,), (1, 2, 5, 13), (700, 4099, 65536)])
@pytest.mark.parametrize(
    "visitor", [("mcvisid",), ("post_visid_high", "post_visid_low")], ids=["mcvisid", "high_low"]
)
def test_native_equals_python(generated, chunk_sizes, visitor):
    headers, hits, raw = generated
    layout = HitLayout.from_headers(headers, visitor, "post_evar22")
    native, python = tallies(raw, layout, chunk_sizes)
    same(native, python)
    assert native.rows == len(hits)
    if visitor == ("mcvisid",):
        assert b"555\n000" in native.seen
        assert b"12345\\678\t9" in native.seen | native.known


def test_without_filter_columns():
    headers = ["mcvisid", "post_evar22", "x"]
    layout = HitLayout.from_headers(headers, ("mcvisid",), "post_evar22")
    raw = b"v1\t\tx\nv1\tC\tx\nv2\t\t\\\tx\n\t\tx\nv3\t\tlast"
    native, python = tallies(raw, layout)
    same(native, python)
    assert (native.rows, native.rows_without_visitor) == (5, 1)
    assert (native.known, native.seen) == ({b"v1"}, {b"v1", b"v2", b"v3"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"a\tb\tc\nd\te\n", "row 2 has 2 fields"),
        (b"a\tb\tc\td\n", "row 1 has 4 fields"),
        (b"a\tb\tc\\", "ends inside a backslash escape"),
    ],
)
def test_errors_match_the_python_scanner(raw, message):
    layout = HitLayout.from_headers(["mcvisid", "post_evar22", "z"], ("mcvisid",), "post_evar22")
    with pytest.raises(CorruptFileError, match=message):
        nativescan.NativeScan(layout, VisitorTally(layout), "f").run([raw])


@pytest.mark.parametrize("chunk_sizes", [(1,), (2, 3), (1, 4, 7), (64,)])
def test_rows_of_escaped_newlines_and_backslash_runs_across_every_boundary(chunk_sizes):
    # escaped newlines, escaped tabs and backslash runs of odd and even length, so that chunk
    # boundaries fall inside escapes, between a backslash and its byte, and after even runs
    headers = ["exclude_hit", "hit_source", "note", "mcvisid", "post_evar22"]
    layout = HitLayout.from_headers(headers, ("mcvisid",), "post_evar22")
    notes = ["\\\n" * 9, "\\\t\\\\\\\n", "\\\\\\\\", "a\\\\\\\nb", "\\\\" * 5 + "\\\n"]
    rows = [
        f"0\t1\t{note}\tv{n % 4}\t{'C' if n % 3 == 0 else ''}\n" for n, note in enumerate(notes * 5)
    ]
    native, python = tallies("".join(rows).encode(), layout, chunk_sizes)
    same(native, python)
    assert native.rows == 25


def _portable_build(tmp_path_factory) -> ctypes.CDLL | None:
    """The scanner as built where SSE2 is absent (arm64): the same masks from SWAR words."""
    out = tmp_path_factory.mktemp("portable") / "libfeedscan-portable.so"
    source = nativescan.LIBRARY.with_name("feedscan.c")
    build = subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "-O2", "-shared", "-fPIC", "-Wall", "-Werror",
         "-DFEEDSCAN_PORTABLE", "-o", str(out), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    return nativescan._load(out)


@pytest.fixture(scope="module", params=["built", "portable"])
def scanner_library(request, tmp_path_factory):
    if request.param == "built":
        return nativescan._LIB
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("ziglang (a dev dependency, `make install`) is needed to build the variant")
    return _portable_build(tmp_path_factory)


def _random_feed(rng: random.Random, n_columns: int, rows: int, escapes: bool) -> bytes:
    """Fields of 0-150 bytes, so wanted fields start and end everywhere in a 64-byte block."""
    plain = "abcdefghij0123456789 -=/:;,."
    lines = []
    for _ in range(rows):
        fields = []
        for _ in range(n_columns):
            size = rng.choice((0, 0, 0, 1, 2, 7, 30, 63, 64, 65, 150))
            text = "".join(rng.choice(plain) for _ in range(size))
            if escapes and rng.random() < 0.05:
                at = rng.randrange(len(text) + 1)
                text = text[:at] + rng.choice(("\\\t", "\\\n", "\\\\")) + text[at:]
            fields.append(text)
        lines.append("\t".join(fields) + "\n")
    return "".join(lines).encode()


@pytest.mark.parametrize("seed", range(6))
def test_wanted_fields_anywhere_in_a_block(scanner_library, monkeypatch, seed):
    monkeypatch.setattr(nativescan, "_LIB", scanner_library)
    rng = random.Random(seed)
    n_columns = rng.choice((3, 9, 40, 130))
    headers = [f"c{i}" for i in range(n_columns)]
    # roles at random columns, column 0 and the last column included on some seeds
    picks = rng.sample(range(n_columns), 3) if seed % 2 else [0, n_columns - 1, n_columns // 2]
    headers[picks[0]], headers[picks[1]], headers[picks[2]] = "mcvisid", "post_evar22", "hit_source"
    layout = HitLayout.from_headers(headers, ("mcvisid",), "post_evar22")
    raw = _random_feed(rng, n_columns, 300, escapes=seed >= 3)
    native, python = tallies(raw, layout, (64, 100, 4099, 1 << 20), seed=seed)
    same(native, python)
    assert native.rows == 300
