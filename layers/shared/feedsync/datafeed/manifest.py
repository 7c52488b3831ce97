"""The delivery manifest: ``Key: value`` lines in blank-line separated sections.

The first section is the header (``Datafeed-Manifest-Version``, ``Lookup-Files``, ``Data-Files``,
``Total-Records``); then one section per file (``Lookup-File`` or ``Data-File``, ``MD5-Digest``,
``File-Size`` and, for data files, ``Record-Count``). Digest and size are of the compressed file.
Parsing is strict: any deviation is an error naming the line, because a manifest we misread
would let an incomplete delivery pass as complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from feedsync.errors import ManifestError

_HEADER_KEYS = ("Datafeed-Manifest-Version", "Lookup-Files", "Data-Files", "Total-Records")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    is_data: bool
    md5: str  # lower-case hex
    size: int
    records: int | None  # data files only


@dataclass(frozen=True)
class Manifest:
    version: str
    total_records: int
    lookup_files: tuple[ManifestEntry, ...]
    data_files: tuple[ManifestEntry, ...]

    @property
    def files(self) -> tuple[ManifestEntry, ...]:
        return self.lookup_files + self.data_files


def _sections(text: str, name: str) -> list[list[tuple[int, str, str]]]:
    sections: list[list[tuple[int, str, str]]] = []
    current: list[tuple[int, str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if current:
                sections.append(current)
                current = []
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ManifestError(name, f"line {number}: expected 'Key: value', got {raw[:80]!r}")
        current.append((number, key.strip(), value.strip()))
    if current:
        sections.append(current)
    return sections


def _as_dict(section: list[tuple[int, str, str]], name: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for number, key, value in section:
        if key in out:
            raise ManifestError(name, f"line {number}: '{key}' repeated in one section")
        out[key] = (number, value)
    return out


_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²' or '٣'


def _int(fields: dict[str, tuple[int, str]], key: str, name: str, where: int) -> int:
    if key not in fields:
        raise ManifestError(name, f"section at line {where}: '{key}' is missing")
    number, value = fields[key]
    if not _DIGITS.fullmatch(value):
        raise ManifestError(name, f"line {number}: '{key}' must be a whole number, got {value!r}")
    return int(value)


def _entry(section: list[tuple[int, str, str]], name: str, seen: set[str]) -> ManifestEntry:
    fields = _as_dict(section, name)
    where = section[0][0]
    kinds = [k for k in ("Lookup-File", "Data-File") if k in fields]
    if len(kinds) != 1:
        raise ManifestError(
            name, f"section at line {where}: needs exactly one of 'Lookup-File' or 'Data-File'"
        )
    is_data = kinds[0] == "Data-File"
    file_line, file_name = fields[kinds[0]]
    if not file_name or "/" in file_name:
        raise ManifestError(name, f"line {file_line}: bad file name {file_name!r}")
    if file_name in seen:
        raise ManifestError(name, f"line {file_line}: '{file_name}' is listed twice")
    seen.add(file_name)
    if "MD5-Digest" not in fields:
        raise ManifestError(name, f"section at line {where}: 'MD5-Digest' is missing")
    md5_line, md5 = fields["MD5-Digest"]
    if not _MD5.fullmatch(md5):
        raise ManifestError(name, f"line {md5_line}: 'MD5-Digest' is not 32 hex digits")
    size = _int(fields, "File-Size", name, where)
    records = _int(fields, "Record-Count", name, where) if is_data else None
    return ManifestEntry(file_name, is_data, md5.lower(), size, records)


def _check_totals(
    header: dict[str, tuple[int, str]], start: int, manifest: Manifest, name: str
) -> None:
    n_lookup = _int(header, "Lookup-Files", name, start)
    n_data = _int(header, "Data-Files", name, start)
    if len(manifest.lookup_files) != n_lookup:
        raise ManifestError(
            name,
            f"header says Lookup-Files: {n_lookup}, sections list {len(manifest.lookup_files)}",
        )
    if len(manifest.data_files) != n_data:
        raise ManifestError(
            name, f"header says Data-Files: {n_data}, sections list {len(manifest.data_files)}"
        )
    listed = sum(entry.records or 0 for entry in manifest.data_files)
    if listed != manifest.total_records:
        raise ManifestError(
            name,
            f"header says Total-Records: {manifest.total_records}, data file sections add up to "
            f"{listed}",
        )


def parse_manifest(text: str, name: str = "manifest") -> Manifest:
    sections = _sections(text, name)
    if not sections:
        raise ManifestError(name, "the manifest is empty")
    header = _as_dict(sections[0], name)
    start = sections[0][0][0]
    for key in _HEADER_KEYS:
        if key not in header:
            raise ManifestError(name, f"header section at line {start}: '{key}' is missing")
    total = _int(header, "Total-Records", name, start)
    seen: set[str] = set()
    entries = [_entry(section, name, seen) for section in sections[1:]]
    manifest = Manifest(
        header["Datafeed-Manifest-Version"][1],
        total,
        tuple(e for e in entries if not e.is_data),
        tuple(e for e in entries if e.is_data),
    )
    _check_totals(header, start, manifest, name)
    return manifest
