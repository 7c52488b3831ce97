"""The hit scanner against the standard library's csv reader, the slow but correct reference."""

import csv
import gzip
import io
import random

import pytest

from feedsync.datafeed.gzipstream import decompressed_chunks
from feedsync.datafeed.hits import RowScanner
from feedsync.errors import CorruptFileError
from sandbox import feedgen


def reference_rows(raw: bytes, wanted):
    reader = csv.reader(
        io.StringIO(raw.decode("iso-8859-1"), newline=""),
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
        escapechar="\\",
        lineterminator="\n",
    )
    return [tuple(row[i].encode("iso-8859-1") for i in wanted) for row in reader]


def scan(raw: bytes, n_columns: int, wanted, chunk_sizes=(1 << 20,)):
    scanner = RowScanner(n_columns, wanted, "test.tsv.gz")
    rng = random.Random(1)
    chunks, pos = [], 0
    while pos < len(raw):
        size = rng.choice(chunk_sizes)
        chunks.append(raw[pos : pos + size])
        pos += size
    rows = [row for batch in scanner.rows(chunks) for row in batch]
    return rows, scanner.records


@pytest.fixture(scope="module")
def feed_text():
    headers = feedgen.column_headers(300)
    rng, hits = feedgen.noisy_hits(3000, seed=3, n_visitors=400, every=40)
    return headers, feedgen.render(hits, headers, rng)


@pytest.mark.parametrize("chunk_sizes", [(1 << 20,), (1, 2, 3, 7, 64), (511, 4093, 65536)])
def test_matches_csv_reader_on_every_row_whatever_the_chunking(feed_text, chunk_sizes):
    headers, raw = feed_text
    assert b"\\\t" in raw and b"\\\n" in raw and b"\\\\" in raw  # the quirks are really there
    wanted = (0, 5, 82, 96, 140, 181, 277, 278, 299)
    rows, records = scan(raw, len(headers), wanted, chunk_sizes)
    assert rows == reference_rows(raw, wanted)
    assert records == 3000


def test_escapes_in_the_extracted_columns_are_unescaped():
    raw = b"a\\\tb\tc\\\\\tend\\\nline\n"
    rows, _ = scan(raw, 3, (0, 1, 2))
    assert rows == [(b"a\tb", b"c\\", b"end\nline")]


def test_last_row_without_newline_counts():
    rows, records = scan(b"1\t2\n3\t4", 2, (1,))
    assert (rows, records) == ([(b"2",), (b"4",)], 2)


def test_short_row_is_an_error_naming_the_row():
    raw = b"a\tb\tc\nd\te\nf\tg\th\n"
    with pytest.raises(CorruptFileError, match=r"row 2 has 2 fields, column_headers\.tsv names 3"):
        scan(raw, 3, (2,))


def test_long_row_is_an_error_too():
    with pytest.raises(CorruptFileError, match="row 1 has 4 fields"):
        scan(b"a\tb\tc\td\n", 3, (0,))


def test_file_ending_inside_an_escape_is_an_error():
    with pytest.raises(CorruptFileError, match="ends inside a backslash escape"):
        scan(b"a\tb\\", 2, (0,))


def test_latin1_bytes_pass_through():
    rows, _ = scan("caf\xe9\t\xfc\n".encode("iso-8859-1"), 2, (0, 1))
    assert rows == [("caf\xe9".encode("iso-8859-1"), b"\xfc")]


# -- gzip handling ----------------------------------------------------------------------------
def test_multi_member_gzip_is_read_whole():
    body = gzip.compress(b"a\n") + gzip.compress(b"b\n")
    assert b"".join(decompressed_chunks(io.BytesIO(body), "f", read_size=3)) == b"a\nb\n"


def test_truncated_gzip_is_an_error():
    body = gzip.compress(b"x" * 100000)
    with pytest.raises(CorruptFileError, match="truncated gzip"):
        b"".join(decompressed_chunks(io.BytesIO(body[:-20]), "01-a_2026-01-01.tsv.gz"))


def test_garbage_is_an_error():
    with pytest.raises(CorruptFileError, match="not valid gzip"):
        b"".join(decompressed_chunks(io.BytesIO(b"this is not gzip at all"), "f"))


def test_empty_file_is_an_error():
    with pytest.raises(CorruptFileError, match="empty"):
        b"".join(decompressed_chunks(io.BytesIO(b""), "f"))
