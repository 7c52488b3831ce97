"""Where enriched rows go: Data Sources 2.0, BDIA, Data Sources 1.4, Adobe Target.

Each destination turns a batch's mapped rows into its own files (``files``) and sends them
(``send``). ``send`` with ``check_existing`` is called when an earlier attempt of the same batch
may have reached Adobe; it must then not create a second copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from feedsync import __version__
from feedsync.adobe import bdia, target
from feedsync.adobe.bdia import BdiaClient
from feedsync.adobe.datasources import DataSourcesClient
from feedsync.adobe.datasources14 import LegacyDataSourcesClient
from feedsync.adobe.target import TargetClient
from feedsync.pipeline.mapping import MappedRow, Mapping
from feedsync.pipeline.uploadfile import build_datasource_files, hit_date

NAMES = ("datasources", "bdia", "datasources14", "target")


@dataclass(frozen=True)
class Batch:
    rsid: str
    day: dt.date
    delivery: str  # delivery id, e.g. acmeprod_2015-07-13
    run: str  # the run key (delivery key, with a dry-run prefix when dry)
    index: int
    rows: list[MappedRow]
    mapping: Mapping

    @property
    def stem(self) -> str:
        return f"feedsync_{self.delivery}_b{self.index:05d}"

    def key(self, part: int) -> str:
        """Deterministic idempotency key: the same batch part always gets the same key."""
        digest = hashlib.sha256(f"{self.run}|{self.index}|{part}".encode()).hexdigest()[:32]
        return f"feedsync-{digest}"


class Destination(Protocol):
    name: str

    def files(self, batch: Batch) -> list[tuple[str, bytes]]: ...

    def send(
        self, batch: Batch, files: list[tuple[str, bytes]], check_existing: bool
    ) -> list[dict[str, Any]]: ...


class DataSourcesDestination:
    name = "datasources"

    def __init__(self, client: DataSourcesClient | None, data_source_id: str) -> None:
        self.client = client
        self.data_source_id = data_source_id

    def files(self, batch: Batch) -> list[tuple[str, bytes]]:
        built = build_datasource_files(
            batch.rows,
            batch.mapping,
            batch.day,
            comment=f"feedsync {__version__}: {batch.delivery} batch {batch.index}",
        )
        return [(f"{batch.stem}_p{n}.txt", data) for n, data in enumerate(built.parts, start=1)]

    def send(
        self, batch: Batch, files: list[tuple[str, bytes]], check_existing: bool
    ) -> list[dict[str, Any]]:
        assert self.client is not None, "no Adobe client in a dry run"
        jobs = []
        for name, data in files:
            job = (
                self.client.find_job(batch.rsid, self.data_source_id, name)
                if check_existing
                else None
            )
            if job is None:
                job = self.client.upload(batch.rsid, self.data_source_id, name, data)
            jobs.append(
                {
                    "file": name,
                    "job_id": job.get("job_id"),
                    "status": job.get("status"),
                    "rows": job.get("rows"),
                }
            )
        return jobs


def _evar_column(header: str) -> str | None:
    match = re.fullmatch(r"Evar (\d+)", header)
    return f"eVar{match.group(1)}" if match else None


class BdiaDestination:
    name = "bdia"

    def __init__(self, client: BdiaClient | None, visitor_group: str) -> None:
        self.client = client
        self.visitor_group = visitor_group

    def files(self, batch: Batch) -> list[tuple[str, bytes]]:
        evars = {h: c for h in batch.mapping.columns.values() if (c := _evar_column(h))}
        event = "event" + batch.mapping.success_event.split()[-1]
        columns = [
            "marketingCloudVisitorID",
            "timestamp",
            "reportSuiteID",
            "userAgent",
            "linkType",
            "linkName",
            "events",
            *evars.values(),
        ]
        noon = dt.datetime.strptime(hit_date(batch.day), "%m/%d/%Y/%H/%M/%S").replace(tzinfo=dt.UTC)
        stamp = str(int(noon.timestamp()))
        rows = (
            {
                "marketingCloudVisitorID": row.visitor,
                "timestamp": stamp,
                "reportSuiteID": batch.rsid,
                "userAgent": f"feedsync/{__version__}",
                "linkType": "o",
                "linkName": "feedsync CRM enrichment",
                "events": event,
                **{column: row.values.get(header, "") for header, column in evars.items()},
            }
            for row in batch.rows
        )
        parts = bdia.write_files(columns, rows)
        return [(f"{batch.stem}_p{n}.csv.gz", data) for n, data in enumerate(parts, start=1)]

    def send(
        self, batch: Batch, files: list[tuple[str, bytes]], check_existing: bool
    ) -> list[dict[str, Any]]:
        assert self.client is not None, "no Adobe client in a dry run"
        sent = []
        for part, (name, data) in enumerate(files, start=1):
            # The idempotency key makes a re-send a no-op at Adobe, checked or not.
            result = self.client.upload(data, self.visitor_group, batch.key(part))
            sent.append(
                {"file": name, "idempotency_key": batch.key(part), "rows": result.get("rows")}
            )
        return sent


class LegacyDataSourcesDestination:
    name = "datasources14"

    def __init__(self, client: LegacyDataSourcesClient | None, data_source_id: str) -> None:
        self.client = client
        self.data_source_id = data_source_id

    def job_name(self, batch: Batch) -> str:
        clean = re.sub(r"[^A-Za-z0-9]", "", f"{batch.rsid}{batch.day:%Y%m%d}")
        return f"feedsync{clean}b{batch.index}"[:100]

    def files(self, batch: Batch) -> list[tuple[str, bytes]]:
        built = build_datasource_files(batch.rows, batch.mapping, batch.day)
        return [(f"{batch.stem}_p{n}.txt", data) for n, data in enumerate(built.parts, start=1)]

    def send(
        self, batch: Batch, files: list[tuple[str, bytes]], check_existing: bool
    ) -> list[dict[str, Any]]:
        assert self.client is not None, "no Adobe client in a dry run"
        headers = batch.mapping.headers
        rows = []
        for _, data in files:
            for line in data.decode("utf-8").splitlines()[1:]:
                if line and not line.startswith("#"):
                    rows.append(line.split("\t"))
        result = self.client.upload_data(
            batch.rsid, self.data_source_id, self.job_name(batch), headers, rows
        )
        return [result]


class TargetDestination:
    name = "target"

    def __init__(self, client: TargetClient | None) -> None:
        self.client = client

    def files(self, batch: Batch) -> list[tuple[str, bytes]]:
        attributes = [f for f in batch.mapping.columns if f != batch.mapping.crm_id_field]
        if not attributes:
            return []
        rows = ((row.crm_id, row.attributes) for row in batch.rows if row.crm_id)
        parts = target.write_batches(attributes, rows)
        return [(f"{batch.stem}_p{n}.target.txt", data) for n, data in enumerate(parts, start=1)]

    def send(
        self, batch: Batch, files: list[tuple[str, bytes]], check_existing: bool
    ) -> list[dict[str, Any]]:
        # A repeated v2 batch writes the same attribute values again: harmless, so no check.
        assert self.client is not None, "no Adobe client in a dry run"
        return [
            {"file": name, "batch_status": self.client.batch_update(data)} for name, data in files
        ]
