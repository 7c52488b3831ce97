"""Adobe data feed file names.

A delivery for report suite ``rsid`` and day ``YYYY-mm-dd`` (hourly feeds add ``-HHMMSS``):

* multiple-file packaging: ``NN-rsid_YYYY-mm-dd.tsv.gz`` data files (split at ~2 GB uncompressed),
  ``rsid_YYYY-mm-dd-lookup_data.tar.gz`` (``column_headers.tsv`` and lookup tables);
* single-file packaging: ``rsid_YYYY-mm-dd.tar.gz`` holding ``hit_data.tsv`` and the lookups;
* always last: the manifest ``rsid_YYYY-mm-dd.txt``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from feedsync.errors import FeedNameError

_STEM = r"(?P<rsid>[A-Za-z0-9.\-]+?)_(?P<day>\d{4}-\d{2}-\d{2})(?:-(?P<hour>\d{6}))?"
_PATTERNS = (
    ("data", re.compile(r"(?P<index>\d+)-" + _STEM + r"\.tsv\.gz")),
    ("lookup", re.compile(_STEM + r"-lookup_data\.tar\.gz")),
    ("single", re.compile(_STEM + r"\.(?:tar\.gz|zip)")),
    ("manifest", re.compile(_STEM + r"\.txt")),
)


class FileKind(StrEnum):
    DATA = "data"  # one gzip part of a multiple-file delivery
    LOOKUP = "lookup"  # lookup archive of a multiple-file delivery
    SINGLE = "single"  # single-file packaging: hits and lookups in one archive
    MANIFEST = "manifest"


@dataclass(frozen=True, order=True)
class Delivery:
    """One delivery: a report suite, a day and, for hourly feeds, the hour it starts."""

    rsid: str
    day: dt.date
    hour: str | None = None

    @property
    def id(self) -> str:
        stem = f"{self.rsid}_{self.day.isoformat()}"
        return f"{stem}-{self.hour}" if self.hour else stem

    @property
    def manifest_name(self) -> str:
        return f"{self.id}.txt"

    @property
    def lookup_name(self) -> str:
        return f"{self.id}-lookup_data.tar.gz"


@dataclass(frozen=True)
class FeedFile:
    name: str
    kind: FileKind
    delivery: Delivery
    index: int | None = None


def parse_feed_name(name: str) -> FeedFile:
    """Classify a base file name; raise FeedNameError if it is not a data feed file."""
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(name)
        if not match:
            continue
        try:
            day = dt.date.fromisoformat(match["day"])
        except ValueError:
            raise FeedNameError(name, f"'{match['day']}' is not a calendar date") from None
        hour = match["hour"]
        if hour and (int(hour[:2]) > 23 or int(hour[2:4]) > 59 or int(hour[4:]) > 59):
            raise FeedNameError(name, f"'{hour}' is not a time of day (HHMMSS)")
        index = int(match["index"]) if kind == "data" else None
        return FeedFile(name, FileKind(kind), Delivery(match["rsid"], day, hour), index)
    raise FeedNameError(
        name,
        "not a data feed file name; expected NN-rsid_YYYY-mm-dd[-HHMMSS].tsv.gz, "
        "rsid_YYYY-mm-dd[-HHMMSS]-lookup_data.tar.gz, rsid_YYYY-mm-dd[-HHMMSS].tar.gz "
        "or the manifest rsid_YYYY-mm-dd[-HHMMSS].txt",
    )
