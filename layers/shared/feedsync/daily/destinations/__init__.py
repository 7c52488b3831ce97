"""The destinations, in one registry: configuration checks names against it, wiring builds
destinations from it, and nothing else spells a destination's name.

``datasources`` (Data Sources 2.0, the default), ``bdia`` (Bulk Data Insertion API),
``target`` (Adobe Target bulk profile update) and ``aep`` (Experience Platform datasets, for
Customer Journey Analytics). ``datasources14`` is retired: Adobe switched the
Analytics 1.4 API off on 2026-08-12 (AdobeDocs/analytics-1.4-apis src/pages/guides/eol.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feedsync.daily.destinations.base import (
    Batch,
    BuiltFiles,
    Destination,
    FileBuilder,
    Sender,
    UploadFile,
)
from feedsync.daily.destinations.dryrun import DrySender

if TYPE_CHECKING:
    from feedsync.adobe.session import AdobeSession
    from feedsync.config import EnrichFunctionConfig

__all__ = ["NAMES", "RETIRED", "Batch", "BuiltFiles", "Destination", "UploadFile", "build"]


@dataclass(frozen=True)
class DestinationSpec:
    builder: Callable[[], FileBuilder]
    sender: Callable[[EnrichFunctionConfig, AdobeSession], Sender]


def _datasources_sender(config: EnrichFunctionConfig, session: AdobeSession) -> Sender:
    from feedsync.adobe.analytics import AnalyticsClient
    from feedsync.adobe.datasources import DataSourcesClient
    from feedsync.daily.destinations.datasources import DataSourcesSender

    client = DataSourcesClient(AnalyticsClient(session), settle=config.adobe_settle_seconds)
    return DataSourcesSender(client, config.data_source_for)


def _bdia_sender(config: EnrichFunctionConfig, session: AdobeSession) -> Sender:
    from feedsync.adobe.bdia import BdiaClient, Pacer
    from feedsync.daily.destinations.bdia import BdiaSender

    pacer = Pacer(*config.bdia_pacing)
    return BdiaSender(BdiaClient(session, pacer), config.bdia_visitor_group)


def _target_sender(config: EnrichFunctionConfig, session: AdobeSession) -> Sender:
    from feedsync.adobe.target import TargetClient
    from feedsync.daily.destinations.target import TargetSender

    return TargetSender(TargetClient(session, config.target_tenant, config.target_client))


def _aep_sender(config: EnrichFunctionConfig, session: AdobeSession) -> Sender:
    from feedsync.daily.destinations.aep import AepSender

    return AepSender(session)


def _aep_files() -> FileBuilder:
    from feedsync.daily.destinations.aep import AepFiles

    return AepFiles()


def _datasources_files() -> FileBuilder:
    from feedsync.daily.destinations.datasources import DataSourcesFiles

    return DataSourcesFiles()


def _bdia_files() -> FileBuilder:
    from feedsync.daily.destinations.bdia import BdiaFiles

    return BdiaFiles()


def _target_files() -> FileBuilder:
    from feedsync.daily.destinations.target import TargetFiles

    return TargetFiles()


REGISTRY: dict[str, DestinationSpec] = {
    "datasources": DestinationSpec(_datasources_files, _datasources_sender),
    "bdia": DestinationSpec(_bdia_files, _bdia_sender),
    "target": DestinationSpec(_target_files, _target_sender),
    "aep": DestinationSpec(_aep_files, _aep_sender),
}
NAMES = tuple(REGISTRY)
RETIRED = {
    "datasources14": (
        "the Data Sources 1.4 API is retired: Adobe switched the Analytics 1.4 API off on "
        "2026-08-12; use datasources (Data Sources 2.0) or bdia (Bulk Data Insertion API)"
    )
}


def build(
    config: EnrichFunctionConfig, session: AdobeSession | None, dry_run: bool
) -> list[Destination]:
    """The configured destinations; a dry run (or no session) sends nothing."""
    out = []
    for name in config.destinations:
        spec = REGISTRY[name]
        if dry_run or session is None:
            out.append(Destination(name, spec.builder(), DrySender(name), dry_run=True))
        else:
            out.append(Destination(name, spec.builder(), spec.sender(config, session)))
    return out


def follower(
    config: EnrichFunctionConfig, session: AdobeSession | None, name: str
) -> Destination | None:
    """A destination taken out of DESTINATIONS, built only to read Adobe's verdicts on the
    files it sent (reconciliation): None when its settings are gone too (the report says so)."""
    from feedsync.errors import ConfigError

    spec = REGISTRY.get(name)
    if spec is None or session is None:
        return None
    try:
        return Destination(name, spec.builder(), spec.sender(config, session))
    except (ConfigError, ValueError, KeyError):
        return None
