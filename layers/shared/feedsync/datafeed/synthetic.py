"""A tiny, valid data feed delivery in Adobe's layout - for ``feedsync check`` to see the
deployed parse function work end to end before Adobe's first delivery: a lookup archive with
``column_headers.tsv``, one gzip data file, and the manifest (MD5, size, record count) that
Adobe writes last."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile


def _lookup(rsid: str, day: str, headers: list[str]) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    body = ("\t".join(headers) + "\n").encode("iso-8859-1")
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("column_headers.tsv")
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    return f"{rsid}_{day}-lookup_data.tar.gz", buffer.getvalue()


def _section(kind: str, name: str, body: bytes, records: int | None = None) -> list[str]:
    lines = [f"{kind}: {name}", f"MD5-Digest: {hashlib.md5(body).hexdigest()}",
             f"File-Size: {len(body)}"]  # fmt: skip
    if records is not None:
        lines.append(f"Record-Count: {records}")
    return [*lines, ""]


def delivery(
    rsid: str,
    day: str,
    rng: random.Random,
    hits: int = 20,
    visitor_columns: tuple[str, ...] = ("mcvisid",),
    crm_id_column: str = "post_evar22",
) -> dict[str, bytes]:
    """File name -> bytes; every third visitor carries a CRM id (known), the rest pending."""
    headers = [*visitor_columns, crm_id_column, "exclude_hit", "hit_source", "page_url"]
    rows = []
    for n in range(hits):
        ids = [f"{rng.randrange(10**37):038d}" for _ in visitor_columns]
        crm = f"crm-{n}" if n % 3 == 0 else ""
        rows.append("\t".join([*ids, crm, "0", "1", f"https://example.com/{n}"]))
    data = gzip.compress(("\n".join(rows) + "\n").encode("iso-8859-1"))
    data_name = f"01-{rsid}_{day}.tsv.gz"
    lookup_name, lookup = _lookup(rsid, day, headers)
    manifest = ["Datafeed-Manifest-Version: 1.0", "Lookup-Files: 1", "Data-Files: 1",
                f"Total-Records: {hits}", ""]  # fmt: skip
    manifest += _section("Lookup-File", lookup_name, lookup)
    manifest += _section("Data-File", data_name, data, hits)
    return {lookup_name: lookup, data_name: data,
            f"{rsid}_{day}.txt": "\n".join(manifest).encode("iso-8859-1")}  # fmt: skip
