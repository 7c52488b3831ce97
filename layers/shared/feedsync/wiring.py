"""Build the daily run's ports from validated config and boto3 clients (passed in)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.bdia import BdiaClient
from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.datasources import DataSourcesClient
from feedsync.adobe.datasources14 import LegacyDataSourcesClient
from feedsync.adobe.endpoints import AdobeEndpoints
from feedsync.adobe.session import AdobeSession
from feedsync.adobe.target import TargetClient
from feedsync.config import EnrichFunctionConfig
from feedsync.crm.marketo import MarketoClient, MarketoSettings
from feedsync.crm.ratelimit import DynamoRateLimiter, Limits
from feedsync.crm.sources import CrmSource, FileSource, MarketoSource
from feedsync.errors import ConfigError
from feedsync.pipeline.destinations import (
    BdiaDestination,
    DataSourcesDestination,
    Destination,
    LegacyDataSourcesDestination,
    TargetDestination,
)
from feedsync.pipeline.enrich import EnrichPorts, EnrichSettings
from feedsync.pipeline.ledger import DynamoLedger
from feedsync.pipeline.mapping import Mapping
from feedsync.pipeline.runstate import DynamoRunState
from feedsync.secret import Secret
from feedsync.storage import S3Store
from feedsync.transport import Deadline, Transport

logger = logging.getLogger(__name__)


def secret_json(secrets: Any, arn: str) -> dict[str, Any]:
    try:
        text = secrets.get_secret_value(SecretId=arn)["SecretString"]
        value = json.loads(text)
    except ValueError:
        raise ConfigError(f"secret {arn}: not a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(f"secret {arn}: not a JSON object")
    return value


def load_mapping(config: EnrichFunctionConfig, state: S3Store) -> Mapping:
    if config.mapping_file:
        path = Path(config.mapping_file)
        try:
            return Mapping.from_json(path.read_bytes(), str(path))
        except OSError as exc:
            raise ConfigError(f"MAPPING_FILE={path}: {exc.strerror}") from None
    raw = state.get(config.mapping_key)
    if raw is None:
        raise ConfigError(
            f"no mapping file at {state.describe(config.mapping_key)}: upload one (see README, "
            "'Mapping file') or set MAPPING_FILE"
        )
    return Mapping.from_json(raw, state.describe(config.mapping_key))


def _read_uri(s3: Any, uri: str) -> bytes:
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        try:
            body: bytes = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))[
                "Body"
            ].read()
        except s3.exceptions.NoSuchKey:
            raise ConfigError(f"CRM_FILE={uri}: no such object") from None
        return body
    try:
        return Path(uri).read_bytes()
    except OSError as exc:
        raise ConfigError(f"CRM_FILE={uri}: {exc.strerror}") from None


def adobe_session(config: EnrichFunctionConfig, secrets: Any, deadline: Deadline) -> AdobeSession:
    if config.adobe_secret_arn:
        credentials = AdobeCredentials.from_mapping(
            secret_json(secrets, config.adobe_secret_arn), f"secret {config.adobe_secret_arn}"
        )
    else:
        credentials = AdobeCredentials.from_env()
    return AdobeSession.create(credentials, AdobeEndpoints.from_env(), deadline=deadline)


def crm_source(
    config: EnrichFunctionConfig,
    mapping: Mapping,
    clients: dict[str, Any],
    table: Any,
    deadline: Deadline,
) -> tuple[CrmSource, Any]:
    if config.crm_source == "file":
        data = _read_uri(clients["s3"], config.crm_file)
        return FileSource(data, config.crm_file, mapping.visitor_id_field, mapping.crm_fields), None
    if config.marketo_secret_arn:
        values = secret_json(clients["secretsmanager"], config.marketo_secret_arn)
        client_id, client_secret = values.get("client_id"), values.get("client_secret")
    else:
        import os

        client_id, client_secret = (
            os.environ.get("MARKETO_CLIENT_ID"),
            os.environ.get("MARKETO_CLIENT_SECRET"),
        )
    if not client_id or not client_secret:
        raise ConfigError("the Marketo secret needs client_id and client_secret")
    settings = MarketoSettings(config.marketo_base_url, str(client_id), Secret(str(client_secret)))
    host = urlsplit(config.marketo_base_url).netloc
    limiter = DynamoRateLimiter(
        table,
        f"marketo#{host}",
        Limits(config.marketo_calls, config.marketo_window, config.marketo_concurrency),
    )
    client = MarketoClient(
        settings, limiter=limiter, transport=Transport("Marketo", deadline=deadline)
    )
    return (
        MarketoSource(
            client, mapping.visitor_id_field, mapping.crm_fields, config.marketo_concurrency
        ),
        client,
    )


def destinations(config: EnrichFunctionConfig, session: AdobeSession | None) -> list[Destination]:
    analytics = AnalyticsClient(session) if session else None
    out: list[Destination] = []
    for name in config.destinations:
        if name == "datasources":
            out.append(
                DataSourcesDestination(
                    DataSourcesClient(analytics) if analytics else None, config.data_source_id
                )
            )
        elif name == "bdia":
            out.append(
                BdiaDestination(BdiaClient(session) if session else None, config.bdia_visitor_group)
            )
        elif name == "datasources14":
            out.append(
                LegacyDataSourcesDestination(
                    LegacyDataSourcesClient(session) if session else None, config.data_source_id
                )
            )
        elif name == "target":
            client = (
                TargetClient(session, config.target_tenant, config.target_client)
                if session
                else None
            )
            out.append(TargetDestination(client))
    return out


def build_ports(
    config: EnrichFunctionConfig,
    clients: dict[str, Any],
    deadline: Deadline,
    dry_run: bool,
    owner: str,
    continue_later: Any = None,
    metric: Any = None,
) -> EnrichPorts:
    """``clients``: boto3 ``s3``, ``secretsmanager`` clients and the ``table`` resource."""
    state = S3Store(clients["s3"], config.state_bucket)
    table = clients["table"]
    mapping = load_mapping(config, state)
    crm, marketo = crm_source(config, mapping, clients, table, deadline)
    session = None if dry_run else adobe_session(config, clients["secretsmanager"], deadline)
    ports = EnrichPorts(
        state=state,
        ledger=DynamoLedger(table, config.ledger_ttl_days, config.ledger_miss_ttl_days),
        runs=DynamoRunState(table),
        crm=crm,
        mapping=mapping,
        destinations=destinations(config, session),
        continue_later=continue_later,
        owner=owner,
    )
    if metric is not None:
        ports.metric = metric
    if marketo is not None:
        ports.crm_calls = lambda: int(marketo.stats.calls)
    return ports


def settings(config: EnrichFunctionConfig) -> EnrichSettings:
    return EnrichSettings(batch_size=config.batch_size, max_continuations=config.max_continuations)
