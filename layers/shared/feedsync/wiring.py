"""Build the daily run's ports from validated config and the boto3 clients (passed in)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from feedsync.adobe.credentials import AdobeCredentials
from feedsync.adobe.endpoints import AdobeEndpoints
from feedsync.adobe.session import AdobeSession
from feedsync.aws.clients import AwsClients
from feedsync.aws.ledger import DynamoLedger
from feedsync.aws.ratelimit import DynamoRateLimiter
from feedsync.aws.runstate import DynamoRunState
from feedsync.aws.s3 import S3Store
from feedsync.aws.secrets import secret_json
from feedsync.aws.uploads import DynamoUploadLog
from feedsync.config import EnrichFunctionConfig, MarketoConfig
from feedsync.crm.bulk_extract import BulkLeadExtract
from feedsync.crm.marketo import MarketoClient, MarketoSettings
from feedsync.crm.mirror import Mirror
from feedsync.crm.mirror_sync import MirrorSync
from feedsync.crm.ratelimit import Limits
from feedsync.crm.sources import CrmSource, FileSource, MarketoSource, MirrorSource
from feedsync.daily import destinations
from feedsync.daily.mapping import Mapping
from feedsync.daily.run import EnrichPorts
from feedsync.deadline import Deadline
from feedsync.errors import ConfigError
from feedsync.feeds.watch import FeedWatch
from feedsync.secret import Secret
from feedsync.settings import EnrichSettings
from feedsync.state.ports import Metric
from feedsync.storage import ObjectStore
from feedsync.transport import Transport

logger = logging.getLogger(__name__)


def load_mapping(config: EnrichFunctionConfig, state: ObjectStore, rsid: str = "") -> Mapping:
    """The mapping file: MAPPING_FILE, else ``config/mapping.<rsid>.json`` when the report suite
    has its own, else MAPPING_KEY (``config/mapping.json``)."""
    if config.mapping_file:
        path = Path(config.mapping_file)
        try:
            return Mapping.from_json(path.read_bytes(), str(path))
        except OSError as exc:
            raise ConfigError(f"MAPPING_FILE={path}: {exc.strerror}") from None
    if rsid:
        own = config.mapping_key.removesuffix(".json") + f".{rsid}.json"
        raw = state.get(own)
        if raw is not None:
            return Mapping.from_json(raw, state.describe(own))
    raw = state.get(config.mapping_key)
    if raw is None:
        raise ConfigError(
            f"no mapping file at {state.describe(config.mapping_key)}: upload one (see README, "
            "'Mapping file') or set MAPPING_FILE"
        )
    return Mapping.from_json(raw, state.describe(config.mapping_key))


def _open_uri(clients: AwsClients, uri: str) -> tuple[BinaryIO, dt.datetime]:
    """The CRM export as a local file (it is sorted on local disk, never held in memory), and
    when it was written (S3 LastModified, or the file's mtime).

    An S3 export is spooled to a temporary file first: the sort reads it as text, which an S3
    response stream does not support."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        key = parts.path.lstrip("/")
        try:
            answer = clients.s3.get_object(Bucket=parts.netloc, Key=key)
        except clients.s3.exceptions.NoSuchKey:
            raise ConfigError(f"CRM_FILE={uri}: no such object") from None
        spool = tempfile.TemporaryFile(prefix="feedsync-crm-export-")  # noqa: SIM115 - returned
        shutil.copyfileobj(answer["Body"], spool, 1 << 20)
        spool.seek(0)
        return spool, answer["LastModified"]
    try:
        path = Path(uri)
        return path.open("rb"), dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError as exc:
        raise ConfigError(f"CRM_FILE={uri}: {exc.strerror}") from None


def file_source(clients: AwsClients, uri: str, mapping: Mapping) -> FileSource:
    """CRM_SOURCE=file: the export at ``uri`` (s3://... or a local path), sorted on disk."""
    data, written = _open_uri(clients, uri)
    with data:
        return FileSource(data, uri, mapping.visitor_id_field, mapping.crm_fields, written)


def adobe_session(
    config: EnrichFunctionConfig, clients: AwsClients, deadline: Deadline
) -> AdobeSession:
    if config.adobe_secret_arn:
        credentials = AdobeCredentials.from_mapping(
            secret_json(clients.secrets, config.adobe_secret_arn, "ADOBE_SECRET_ARN"),
            f"secret {config.adobe_secret_arn}",
        )
    else:
        credentials = AdobeCredentials.from_env()
    return AdobeSession.create(credentials, AdobeEndpoints.from_env(), deadline=deadline)


def _marketo_credentials(marketo: MarketoConfig, clients: AwsClients) -> tuple[str, str]:
    if marketo.secret_arn:
        values = secret_json(clients.secrets, marketo.secret_arn, "MARKETO_SECRET_ARN")
        client_id, client_secret = values.get("client_id"), values.get("client_secret")
    else:
        client_id = os.environ.get("MARKETO_CLIENT_ID")
        client_secret = os.environ.get("MARKETO_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ConfigError("the Marketo secret needs client_id and client_secret")
    return str(client_id), str(client_secret)


def crm_source(
    config: EnrichFunctionConfig, mapping: Mapping, clients: AwsClients, deadline: Deadline
) -> CrmSource:
    if config.marketo is None:
        return file_source(clients, config.crm_file, mapping)
    client = _marketo_client(config.marketo, clients, deadline)
    if config.crm_source == "marketo-mirror":
        return _mirror(config, client, clients, mapping)
    marketo = config.marketo
    return MarketoSource(client, mapping.visitor_id_field, mapping.crm_fields, marketo.concurrency)


def _mirror(
    config: EnrichFunctionConfig, client: MarketoClient, clients: AwsClients, mapping: Mapping
) -> CrmSource:
    assert config.marketo is not None
    state = S3Store(clients.s3, config.state_bucket)
    mirror = Mirror(state, mapping.visitor_id_field, mapping.crm_fields)
    extract = BulkLeadExtract(client, poll=config.marketo.export_poll)
    marketo = config.marketo
    sync = MirrorSync(extract, mirror, marketo.mirror_initial_days)
    return MirrorSource(mirror, sync, sync_every=dt.timedelta(hours=marketo.mirror_sync_hours))


def _marketo_client(
    marketo: MarketoConfig, clients: AwsClients, deadline: Deadline
) -> MarketoClient:
    client_id, client_secret = _marketo_credentials(marketo, clients)
    limiter = DynamoRateLimiter(
        clients.table,
        f"marketo#{urlsplit(marketo.base_url).netloc}",
        Limits(marketo.calls, marketo.window, marketo.concurrency),
    )
    return MarketoClient(
        MarketoSettings(marketo.base_url, client_id, Secret(client_secret)),
        limiter=limiter,
        transport=Transport("Marketo", deadline=deadline),
    )


def build_ports(
    config: EnrichFunctionConfig,
    clients: AwsClients,
    deadline: Deadline,
    dry_run: bool,
    owner: str,
    continue_later: object = None,
    metric: Metric | None = None,
    on_adobe_error: Callable[[int], None] | None = None,
) -> EnrichPorts:
    state = S3Store(clients.s3, config.state_bucket)
    mapping = load_mapping(config, state)
    session = None if dry_run else adobe_session(config, clients, deadline)
    if session is not None:
        session.on_error = on_adobe_error
    crm = crm_source(config, mapping, clients, deadline)
    ports = EnrichPorts(
        state=state,
        ledger=DynamoLedger(clients.table, config.ledger_ttl_days, config.ledger_miss_ttl_days),
        runs=DynamoRunState(clients.table),
        uploads=DynamoUploadLog(clients.table),
        crm=crm,
        mapping=mapping,
        suite=SuiteSettings(config, state, clients, deadline, mapping, crm).for_rsid,
        destinations=destinations.build(config, session, dry_run),
        continue_later=continue_later,  # type: ignore[arg-type]
        owner=owner,
    )
    if metric is not None:
        ports.metric = metric
    if session is not None:
        ports.follower = lambda name: destinations.follower(config, session, name)
    if config.tuning.shard_state_machine_arn and not dry_run:
        from feedsync.aws.clients import LazyClient
        from feedsync.daily.shards import StepFunctionsShards

        arn = config.tuning.shard_state_machine_arn
        ports.shards = StepFunctionsShards(LazyClient("stepfunctions"), arn)
    if session is not None and config.feeds.feed_ids:
        ports.feeds = feed_watch(config, session, clients, ports.metric)
    return ports


def feed_watch(
    config: EnrichFunctionConfig, session: AdobeSession, clients: AwsClients, metric: Metric
) -> FeedWatch:
    """Adobe's side of each feed (DATA_FEED_IDS): read, resend, alert through ALERT_TOPIC_ARN."""
    from feedsync.adobe.analytics import AnalyticsClient
    from feedsync.adobe.datafeeds import DataFeedClient

    feeds = config.feeds
    alert = None
    if feeds.alert_topic_arn and clients.sns is not None:
        topic, sns = feeds.alert_topic_arn, clients.sns

        def alert(subject: str, message: str) -> None:
            # SNS: a subject of at most 100 printable ASCII characters, no line breaks; an alert
            # that cannot be sent is logged (the metric and the report still say it), never
            # the end of the daily run
            clean = "".join(c if " " <= c <= "~" else "?" for c in subject)[:100]
            try:
                sns.publish(TopicArn=topic, Subject=clean, Message=message)
            except Exception as exc:
                logger.error("the alert %r could not be sent: %s", clean, exc)

    client = DataFeedClient(AnalyticsClient(session, os.environ.get("ADOBE_COMPANY_ID") or None))
    state = S3Store(clients.s3, config.state_bucket)
    return FeedWatch(state, client, feeds.feed_ids, feeds.resend_max, feeds.days, alert, metric)


class SuiteSettings:
    """Per report suite mapping (config/mapping.<rsid>.json) and the CRM source it needs."""

    def __init__(
        self,
        config: EnrichFunctionConfig,
        state: ObjectStore,
        clients: AwsClients,
        deadline: Deadline,
        mapping: Mapping,
        crm: CrmSource,
    ) -> None:
        self.config, self.state, self.clients, self.deadline = config, state, clients, deadline
        self.default = (mapping, crm)
        self.cache: dict[str, tuple[Mapping, CrmSource]] = {}

    def for_rsid(self, rsid: str) -> tuple[Mapping, CrmSource]:
        if rsid not in self.cache:
            mapping = load_mapping(self.config, self.state, rsid)
            same = mapping == self.default[0]
            crm = (
                self.default[1]
                if same
                else crm_source(self.config, mapping, self.clients, self.deadline)
            )
            self.cache[rsid] = (mapping, crm)
        return self.cache[rsid]


def settings(config: EnrichFunctionConfig) -> EnrichSettings:
    tuning = config.tuning
    return EnrichSettings(
        batch_size=tuning.batch_size,
        max_continuations=tuning.max_continuations,
        lock_lease=tuning.lock_lease,
        heartbeat=tuning.lock_lease / 3,
        settle_seconds=tuning.settle_seconds,
        max_attempts=tuning.max_attempts,
        stuck_after=tuning.stuck_hours * 3600,
        feed_encoding=tuning.feed_encoding,
        report_suites=config.report_suites,
        miss_ttl_days=config.ledger_miss_ttl_days,
        shard_visitors=tuning.shard_visitors,
        max_shards=tuning.max_shards,
    )
