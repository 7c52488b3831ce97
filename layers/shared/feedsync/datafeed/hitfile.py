"""Read one hit file end to end: hash the compressed bytes, decompress, scan, tally visitors."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import IO, BinaryIO, cast

from feedsync.datafeed import nativescan
from feedsync.datafeed.gzipstream import decompressed_chunks
from feedsync.datafeed.hits import RowScanner
from feedsync.datafeed.integrity import HashingReader
from feedsync.datafeed.lookup import read_column_headers
from feedsync.datafeed.readahead import read_ahead
from feedsync.datafeed.visitors import HitLayout, VisitorTally
from feedsync.errors import CorruptFileError

SINGLE_FILE_HITS = "hit_data.tsv"


@dataclass
class HitFileScan:
    md5: str
    size: int
    tally: VisitorTally


def tally_hits(chunks: Iterable[bytes], source: str, layout: HitLayout) -> VisitorTally:
    """Scan decompressed hit data with the native scanner when built, else in Python."""
    tally = VisitorTally(layout)
    if nativescan.available():
        nativescan.NativeScan(layout, tally, source).run(read_ahead(chunks))
    else:
        scanner = RowScanner(layout.n_columns, layout.wanted, source)
        for batch in scanner.rows(chunks):
            tally.add(batch)
    return tally


def scan_gzip_hits(stream: BinaryIO, source: str, layout: HitLayout) -> HitFileScan:
    """A multiple-file delivery part: ``NN-rsid_YYYY-mm-dd.tsv.gz``."""
    with HashingReader(stream, background=True) as reader:
        tally = tally_hits(decompressed_chunks(reader, source), source, layout)
        reader.drain()
        return HitFileScan(reader.md5, reader.size, tally)


def _require_tar(source: str) -> None:
    if source.endswith(".zip"):
        raise CorruptFileError(
            source, "zip single-file packaging is not supported; set the feed to gzip compression"
        )


def single_file_headers(stream: BinaryIO, source: str) -> list[str]:
    """Column headers of a single-file archive (the scan pass computes its digest)."""
    _require_tar(source)
    return read_column_headers(stream, source)


def scan_single_file_hits(stream: BinaryIO, source: str, layout: HitLayout) -> HitFileScan:
    """Single-file packaging: ``hit_data.tsv`` inside ``rsid_YYYY-mm-dd.tar.gz``."""
    _require_tar(source)
    reader = HashingReader(stream)
    tally: VisitorTally | None = None
    try:
        with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.rsplit("/", 1)[-1] == SINGLE_FILE_HITS:
                    handle = archive.extractfile(member)
                    assert handle is not None
                    tally = tally_hits(iter(partial(handle.read, 1 << 20), b""), source, layout)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorruptFileError(source, f"not a readable tar.gz archive ({exc})") from None
    if tally is None:
        raise CorruptFileError(source, f"the archive has no {SINGLE_FILE_HITS}")
    reader.drain()
    return HitFileScan(reader.md5, reader.size, tally)
