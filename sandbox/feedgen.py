"""Generate Adobe data feed deliveries with the quirks real ones have.

Escaped tabs, newlines and backslashes (also before the key columns), excluded hits, data-source
hit sources, empty visitor ids, multi-file packaging, visitors pending in one file and known in
another. Each generated delivery knows its expected result, computed independently of feedsync.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

KEY_COLUMNS = (
    "exclude_hit",
    "hit_source",
    "mcvisid",
    "post_evar22",
    "post_visid_high",
    "post_visid_low",
)


def column_headers(n_columns: int = 300) -> list[str]:
    """Realistic names and order: key columns spread through the row, like a real feed."""
    names = [f"col_{i:03d}" for i in range(n_columns)]
    spots = {
        "accept_language": 0,
        "exclude_hit": 82,
        "hit_source": 96,
        "mcvisid": 140,
        "page_url": 150,
        "post_evar22": 181,
        "post_evar23": 182,
        "post_visid_high": 277,
        "post_visid_low": 278,
        "user_agent": n_columns - 1,
    }
    for name, spot in spots.items():
        names[spot] = name
    return names


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\\t").replace("\n", "\\\n")


@dataclass
class Hit:
    visitor: str  # mcvisid; "" for a hit without a visitor id
    crm_id: str = ""
    exclude_hit: str = "0"
    hit_source: str = "1"
    noisy: str = ""  # a value with characters that need escaping, placed before the key columns

    @property
    def counted(self) -> bool:
        return self.exclude_hit in ("", "0") and self.hit_source not in ("5", "7", "8", "9")


@dataclass
class Expected:
    rows: int = 0
    excluded_rows: int = 0
    rows_without_visitor: int = 0
    pending: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)

    @property
    def counted_rows(self) -> int:
        return self.rows - self.excluded_rows

    def add(self, hit: Hit) -> None:
        self.rows += 1
        if not hit.counted:
            self.excluded_rows += 1
        elif not hit.visitor:
            self.rows_without_visitor += 1
        elif hit.crm_id:
            self.known.add(hit.visitor)
        else:
            self.pending.add(hit.visitor)

    @property
    def final_pending(self) -> set[str]:
        return self.pending - self.known


def render_row(hit: Hit, headers: list[str], rng: random.Random) -> str:
    values = {
        "exclude_hit": hit.exclude_hit,
        "hit_source": hit.hit_source,
        "mcvisid": hit.visitor,
        "post_evar22": hit.crm_id,
        "post_visid_high": hit.visitor[:19],
        "post_visid_low": hit.visitor[19:],
        "accept_language": "en-US,en;q=0.8",
        "page_url": f"https://example.com/products/widget?id={rng.randrange(1000)}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    }
    fields = []
    for i, name in enumerate(headers):
        if name in values:
            fields.append(escape(values[name]))
        elif i == 5 and hit.noisy:
            fields.append(escape(hit.noisy))
        else:
            fields.append(rng.choice(("", "", "", "0", "1", "::hash::0", "Y", "100,101")))
    return "\t".join(fields) + "\n"


NOISE = ("tab\there", "new\nline", "back\\slash", "trailing\\", "\\\t\n\\\\", "caf\xe9 \xfc")


def noisy_hits(n: int, seed: int, n_visitors: int, every: int) -> tuple[random.Random, list[Hit]]:
    """Random hits where every ``every``-th one has a value needing escapes before the keys."""
    rng = random.Random(seed)
    hits = random_hits(n, rng, n_visitors)
    for hit in hits[::every]:
        hit.noisy = rng.choice(NOISE)
    return rng, hits


def render(hits: list[Hit], headers: list[str], rng: random.Random) -> bytes:
    return "".join(render_row(h, headers, rng) for h in hits).encode("iso-8859-1")


def random_hits(n: int, rng: random.Random, n_visitors: int) -> list[Hit]:
    visitors = [f"{rng.randrange(10**37, 10**38):038d}" for _ in range(n_visitors)]
    hits = []
    for _ in range(n):
        visitor = rng.choice(visitors) if rng.random() > 0.03 else ""
        hits.append(
            Hit(
                visitor=visitor,
                crm_id=f"CRM-{rng.randrange(10**6)}" if rng.random() < 0.2 else "",
                exclude_hit="0" if rng.random() > 0.05 else rng.choice(("1", "2", "10")),
                hit_source=rng.choice(("1",) * 40 + ("2", "5", "7", "8", "9")),
                noisy=rng.choice(NOISE) if rng.random() < 0.05 else "",
            )
        )
    return hits


@dataclass
class Delivery:
    folder: Path
    rsid: str
    day: str
    files: dict[str, bytes]
    expected: Expected
    manifest_name: str


def gzip_bytes(text: str) -> bytes:
    return gzip.compress(text.encode("iso-8859-1"), compresslevel=6, mtime=0)


def lookup_archive(headers: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in (
            ("browser.tsv", b"1\tChrome\n2\tFirefox\n"),
            ("column_headers.tsv", ("\t".join(headers) + "\n").encode("iso-8859-1")),
            ("event.tsv", b"1\tPurchase\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def manifest_text(lookup: dict[str, bytes], data: dict[str, tuple[bytes, int]]) -> str:
    lines = [
        "Datafeed-Manifest-Version: 1.0",
        f"Lookup-Files: {len(lookup)}",
        f"Data-Files: {len(data)}",
        f"Total-Records: {sum(r for _, r in data.values())}",
        "",
    ]
    for name, body in lookup.items():
        lines += [
            f"Lookup-File: {name}",
            f"MD5-Digest: {hashlib.md5(body).hexdigest()}",
            f"File-Size: {len(body)}",
            "",
        ]
    for name, (body, records) in data.items():
        lines += [
            f"Data-File: {name}",
            f"MD5-Digest: {hashlib.md5(body).hexdigest()}",
            f"File-Size: {len(body)}",
            f"Record-Count: {records}",
            "",
        ]
    return "\n".join(lines)


def make_delivery(
    folder: Path,
    file_hits: list[list[Hit]],
    rsid: str = "acmeprod",
    day: str = "2026-11-20",
    seed: int = 7,
    n_columns: int = 300,
    write: bool = True,
) -> Delivery:
    """A multiple-file delivery, one data file per list of hits; written to folder if asked."""
    rng = random.Random(seed)
    headers = column_headers(n_columns)
    expected = Expected()
    data: dict[str, tuple[bytes, int]] = {}
    for index, hits in enumerate(file_hits, start=1):
        for hit in hits:
            expected.add(hit)
        text = "".join(render_row(hit, headers, rng) for hit in hits)
        data[f"{index:02d}-{rsid}_{day}.tsv.gz"] = (gzip_bytes(text), len(hits))
    lookup = {f"{rsid}_{day}-lookup_data.tar.gz": lookup_archive(headers)}
    files = {name: body for name, body in lookup.items()}
    files.update({name: body for name, (body, _) in data.items()})
    manifest_name = f"{rsid}_{day}.txt"
    files[manifest_name] = manifest_text(lookup, data).encode()
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (folder / name).write_bytes(body)
    return Delivery(folder, rsid, day, files, expected, manifest_name)


def make_single_file_delivery(
    folder: Path, hits: list[Hit], rsid: str = "acmeprod", stem_day: str = "2026-11-20-130000"
) -> Delivery:
    """Single-file packaging: hit_data.tsv and the lookups in one rsid_day.tar.gz."""
    rng = random.Random(3)
    headers = column_headers(300)
    expected = Expected()
    for hit in hits:
        expected.add(hit)
    hit_data = "".join(render_row(hit, headers, rng) for hit in hits).encode("iso-8859-1")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in (
            ("hit_data.tsv", hit_data),
            ("browser.tsv", b"1\tChrome\n"),
            ("column_headers.tsv", ("\t".join(headers) + "\n").encode("iso-8859-1")),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    archive_name = f"{rsid}_{stem_day}.tar.gz"
    files = {archive_name: buffer.getvalue()}
    manifest_name = f"{rsid}_{stem_day}.txt"
    files[manifest_name] = manifest_text(
        {}, {archive_name: (files[archive_name], len(hits))}
    ).encode()
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return Delivery(folder, rsid, stem_day, files, expected, manifest_name)
