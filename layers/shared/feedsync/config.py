"""Settings read from the environment once, at cold start, and validated.

A bad or missing setting fails with a ConfigError that names the variable. The same readers
serve the functions and the CLI, so both refuse the same mistakes with the same words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from feedsync.datafeed.encoding import ENCODINGS
from feedsync.errors import ConfigError, NotConfiguredError
from feedsync.settings import ParseSettings
from feedsync.urls import service_url

_COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_RSID = re.compile(r"[A-Za-z0-9.\-]+")
_NUMBER = re.compile(r"[0-9]+")
_CLIENT_CODE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TRUE = ("1", "true", "yes", "on")
CRM_SOURCES = ("marketo", "marketo-mirror", "file")
DEFAULT_CRM_FILE_KEY = "crm/export.jsonl"  # template.yaml CrmFileKey's default
MAX_VISITOR_COLUMNS = 8  # the native scanner's limit, enforced here for both scanners
FILTER_COLUMNS = ("exclude_hit", "hit_source")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def _bucket(env: Mapping[str, str], name: str) -> str:
    bucket = _required(env, name)
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"{name}={bucket!r} is not an S3 bucket name")
    return bucket


def columns(value: str, name: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    bad = [p for p in parts if not _COLUMN.fullmatch(p)]
    if not parts or bad:
        raise ConfigError(f"{name}={value!r}: expected data feed column names, e.g. mcvisid")
    return parts


def check_roles(visitor: tuple[str, ...], crm: str, visitor_name: str, crm_name: str) -> None:
    """One column, one role: the scanners read each column for one purpose only."""
    if len(visitor) > MAX_VISITOR_COLUMNS:
        raise ConfigError(
            f"{visitor_name}: {len(visitor)} columns; a visitor key has at most "
            f"{MAX_VISITOR_COLUMNS}"
        )
    repeated = sorted({c for c in visitor if visitor.count(c) > 1})
    if repeated:
        raise ConfigError(f"{visitor_name}: {', '.join(repeated)} named twice")
    if crm in visitor:
        raise ConfigError(
            f"{crm_name}={crm} is also a visitor column: it must differ from the {visitor_name}"
        )
    filters = sorted(set(visitor) & set(FILTER_COLUMNS))
    if filters or crm in FILTER_COLUMNS:
        which = ", ".join(filters or [crm])
        raise ConfigError(
            f"{which} decides which hits count; it cannot be a visitor or CRM id column"
        )


def parse_settings(env: Mapping[str, str]) -> ParseSettings:
    visitor = columns(env.get("VISITOR_COLUMNS", "mcvisid"), "VISITOR_COLUMNS")
    crm = columns(env.get("CRM_ID_COLUMN", "post_evar22"), "CRM_ID_COLUMN")
    if len(crm) != 1:
        raise ConfigError(f"CRM_ID_COLUMN={','.join(crm)!r}: name exactly one column")
    check_roles(visitor, crm[0], "VISITOR_COLUMNS", "CRM_ID_COLUMN")
    per_suite = _pairs(env, "CRM_ID_COLUMNS", _COLUMN, "rsid=column, e.g. acmeprod=post_evar22")
    for column in per_suite.values():
        check_roles(visitor, column, "VISITOR_COLUMNS", "CRM_ID_COLUMNS")
    return ParseSettings(visitor, crm[0], tuple(sorted(per_suite.items())))


@dataclass(frozen=True)
class ParseFunctionConfig:
    state_bucket: str
    settings: ParseSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ParseFunctionConfig:
        aws_endpoint(env)
        return cls(state_bucket=_bucket(env, "STATE_BUCKET"), settings=parse_settings(env))


def aws_endpoint(env: Mapping[str, str]) -> str:
    """AWS_ENDPOINT_URL (boto3 honours it): empty for AWS itself; else https, or a loopback
    host (moto in `feedsync local up`)."""
    value = env.get("AWS_ENDPOINT_URL", "").strip()
    return service_url("AWS_ENDPOINT_URL", value) if value else ""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: expected {low}..{high}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, low: float = 0.0) -> float:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected seconds") from None
    if value < low:
        raise ConfigError(f"{name}={raw}: expected at least {low}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: choose from {', '.join(choices)}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    return env.get(name, str(default)).strip().lower() in _TRUE


def marketo_base_url(value: str, name: str = "MARKETO_BASE_URL") -> str:
    """The REST base; ``/rest`` (as Marketo's Web Services page shows it) is stripped, and
    only https is accepted outside loopback (the sandbox)."""
    from feedsync.urls import redacted

    base = value.strip().rstrip("/").removesuffix("/rest").rstrip("/")
    shown = redacted(value)  # never a password in a message
    try:
        parts = urlsplit(base)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    except ValueError:
        raise ConfigError(
            f"{name}: not a URL; expected https://<munchkin id>.mktorest.com"
        ) from None
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(
            f"{name}={shown!r}: expected https://<munchkin id>.mktorest.com (the REST base "
            "from Admin > Web Services)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{name}={shown!r}: no user name or password in the URL (the "
                          "Marketo credential belongs in the secret)")  # fmt: skip
    if not parts.netloc or parts.path or parts.query:
        raise ConfigError(
            f"{name}={shown!r}: expected the REST base, e.g. https://123-ABC-456.mktorest.com"
        )
    return base


def destinations(value: str) -> tuple[str, ...]:
    # imported here: the parse function's cold start does not pay for the destinations
    from feedsync.daily.destinations import NAMES as DESTINATIONS
    from feedsync.daily.destinations import RETIRED

    names = tuple(d.strip().lower() for d in value.split(",") if d.strip())
    retired = [d for d in names if d in RETIRED]
    if retired:
        raise ConfigError(f"DESTINATIONS={value!r}: {RETIRED[retired[0]]}")
    unknown = [d for d in names if d not in DESTINATIONS]
    if not names or unknown:
        raise ConfigError(f"DESTINATIONS={value!r}: choose from {', '.join(DESTINATIONS)}")
    return names


def _pairs(env: Mapping[str, str], name: str, value: re.Pattern[str], hint: str) -> dict[str, str]:
    """``NAME=rsid=value,rsid=value``: one value per report suite."""
    out: dict[str, str] = {}
    raw = env.get(name, "").strip()
    for pair in (p.strip() for p in raw.split(",") if p.strip()):
        rsid, sep, item = (s.strip() for s in pair.partition("="))
        if not sep or not _RSID.fullmatch(rsid) or not value.fullmatch(item):
            raise ConfigError(f"{name}={raw!r}: expected {hint}")
        out[rsid] = item
    return out


def data_source_ids(env: Mapping[str, str]) -> dict[str, str]:
    """``DATA_SOURCE_IDS=rsid=id,rsid=id``: one data source account per report suite."""
    return _pairs(env, "DATA_SOURCE_IDS", _NUMBER, "rsid=id pairs, e.g. acmeprod=101")


def data_feed_ids(env: Mapping[str, str]) -> dict[str, int]:
    """``DATA_FEED_IDS=rsid=id,rsid=id``: the Adobe data feed of each report suite (optional: a
    suite without one is not followed on Adobe's side)."""
    pairs = _pairs(env, "DATA_FEED_IDS", _NUMBER, "rsid=feed id pairs, e.g. acmeprod=16756")
    return {rsid: int(value) for rsid, value in pairs.items()}


@dataclass(frozen=True)
class FeedHealthConfig:
    """Following each data feed request with Adobe's Data Feed API (feeds/)."""

    feed_ids: dict[str, int]
    resend_max: int  # FEED_RESEND_MAX: resends asked per request, at most
    days: int  # FEED_HEALTH_DAYS: how far back requests are read
    alert_topic_arn: str  # ALERT_TOPIC_ARN: where Adobe's own error messages go

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> FeedHealthConfig:
        return cls(
            feed_ids=data_feed_ids(env),
            resend_max=_int(env, "FEED_RESEND_MAX", 1, 0, 10),
            days=_int(env, "FEED_HEALTH_DAYS", 7, 1, 90),
            alert_topic_arn=env.get("ALERT_TOPIC_ARN", "").strip(),
        )


def report_suites(env: Mapping[str, str]) -> tuple[str, ...]:
    """REPORT_SUITES, checked (the CLI's status reads it without the rest of the settings)."""
    return _suites(env)


def _suites(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("REPORT_SUITES", "").strip()
    suites = tuple(s.strip() for s in raw.split(",") if s.strip())
    bad = [s for s in suites if not _RSID.fullmatch(s)]
    if bad:
        raise ConfigError(f"REPORT_SUITES={raw!r}: {bad[0]!r} is not a report suite id")
    return suites


def _export_poll(env: Mapping[str, str]) -> float:
    """Seconds between bulk export status calls: Marketo asks for at least a minute; only the
    local sandbox (a loopback base URL) may be polled faster."""
    poll = _seconds(env, "MARKETO_EXPORT_POLL_SECONDS", 60.0, 0.0)
    host = urlsplit(env.get("MARKETO_BASE_URL", "")).hostname
    if poll < 60 and host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"MARKETO_EXPORT_POLL_SECONDS={poll:g}: Marketo asks for 60 or more")
    return poll


@dataclass(frozen=True)
class MarketoConfig:
    base_url: str
    secret_arn: str
    calls: int
    concurrency: int
    window: float
    mirror_initial_days: int = 365
    export_poll: float = 60.0
    mirror_sync_hours: int = 24  # the mirror catches up at most this often, unless a delivery
    # needs a newer copy

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MarketoConfig:
        if not env.get("MARKETO_SECRET_ARN") and not (
            env.get("MARKETO_CLIENT_ID") and env.get("MARKETO_CLIENT_SECRET")
        ):
            raise ConfigError(
                "set MARKETO_SECRET_ARN, or MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET"
            )
        return cls(
            base_url=marketo_base_url(env.get("MARKETO_BASE_URL", "")),
            secret_arn=env.get("MARKETO_SECRET_ARN", "").strip(),
            calls=_int(env, "MARKETO_CALLS_PER_20S", 50, 1, 100),
            concurrency=_int(env, "MARKETO_CONCURRENCY", 5, 1, 10),
            window=_seconds(env, "MARKETO_WINDOW_SECONDS", 20.0, 0.01),
            mirror_initial_days=_int(env, "MIRROR_INITIAL_DAYS", 365, 1, 3650),
            mirror_sync_hours=_int(env, "MIRROR_SYNC_HOURS", 24, 1, 168),
            export_poll=_export_poll(env),
        )


@dataclass(frozen=True)
class RunTuning:
    """How the daily run paces itself and judges Adobe's answers."""

    batch_size: int = 15_000
    max_continuations: int = 50
    lock_lease: float = 60.0
    settle_seconds: float = 600.0
    max_attempts: int = 3
    stuck_hours: float = 24.0
    feed_encoding: str = "auto"
    shard_visitors: int = 2_000_000  # pending visitors a shard (0: never shard)
    max_shards: int = 100
    shard_state_machine_arn: str = ""  # the DailyShards state machine (empty: no sharding)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunTuning:
        return cls(
            shard_visitors=_int(env, "SHARD_VISITORS", 2_000_000, 0, 1_000_000_000),
            max_shards=_int(env, "MAX_SHARDS", 100, 1, 10_000),
            shard_state_machine_arn=env.get("SHARD_STATE_MACHINE_ARN", "").strip(),
            batch_size=_int(env, "BATCH_SIZE", 15_000, 300, 1_000_000),
            max_continuations=_int(env, "MAX_CONTINUATIONS", 50, 0, 1000),
            lock_lease=_seconds(env, "LOCK_LEASE_SECONDS", 60.0, 15.0),
            settle_seconds=_seconds(env, "ADOBE_SETTLE_SECONDS", 600.0),
            max_attempts=_int(env, "UPLOAD_MAX_ATTEMPTS", 3, 1, 20),
            stuck_hours=_seconds(env, "ADOBE_STUCK_HOURS", 24.0, 0.0),
            feed_encoding=_choice(env, "FEED_ENCODING", ENCODINGS),
        )


def _crm(env: Mapping[str, str]) -> tuple[str, str, MarketoConfig | None]:
    crm = env.get("CRM_SOURCE", "marketo").strip().lower()
    if crm not in CRM_SOURCES:
        raise ConfigError(f"CRM_SOURCE={crm!r}: expected one of {', '.join(CRM_SOURCES)}")
    crm_file = env.get("CRM_FILE", "").strip()
    bucket = env.get("STATE_BUCKET", "").strip()
    if crm == "file" and not crm_file and bucket:
        crm_file = f"s3://{bucket}/{DEFAULT_CRM_FILE_KEY}"  # the stack's CrmFileKey default
    if crm == "file" and not crm_file:
        raise ConfigError(
            f"CRM_FILE is not set (s3://bucket/key of the CRM export, or a path; with "
            f"STATE_BUCKET set it defaults to s3://STATE_BUCKET/{DEFAULT_CRM_FILE_KEY})"
        )
    return crm, crm_file, MarketoConfig.from_env(env) if crm != "file" else None


def _check_destinations(env: Mapping[str, str], names: tuple[str, ...], ids: dict[str, str]) -> str:
    default = env.get("DATA_SOURCE_ID", "").strip()
    if default and not default.isdigit():
        raise ConfigError(f"DATA_SOURCE_ID={default!r}: expected the account's number")
    if "datasources" in names and not (default or ids):
        raise ConfigError(
            "DATA_SOURCE_ID is not set: the data source account id (feedsync datasources "
            "accounts RSID lists them; DATA_SOURCE_IDS=rsid=id,... for several report suites)"
        )
    if "target" in names and not (
        env.get("ADOBE_TARGET_TENANT") and env.get("ADOBE_TARGET_CLIENT")
    ):
        raise ConfigError(
            "the target destination needs ADOBE_TARGET_TENANT and ADOBE_TARGET_CLIENT"
        )
    client = env.get("ADOBE_TARGET_CLIENT", "").strip()
    if client and not _CLIENT_CODE.fullmatch(client):
        # the client code forms the edge host <client>.tt.omtrdc.net: one DNS label
        raise ConfigError(
            f"ADOBE_TARGET_CLIENT={client!r} is not a Target client code (letters, digits and "
            "hyphens, as in <client>.tt.omtrdc.net: Target > Administration > Implementation)"
        )
    return default


@dataclass(frozen=True)
class EnrichFunctionConfig:
    """Everything the daily run needs, checked once. Secrets are fetched later, by ARN."""

    state_bucket: str
    state_table: str
    destinations: tuple[str, ...]
    data_source_id: str  # the default account (DATA_SOURCE_ID)
    mapping_file: str  # a local path, or "" to read mapping_key from the state bucket
    mapping_key: str
    crm_source: str  # marketo | file
    crm_file: str  # s3://bucket/key or a path, for crm_source=file
    marketo: MarketoConfig | None
    adobe_secret_arn: str
    bdia_visitor_group: str
    bdia_pacing: tuple[float, float]  # seconds between calls overall, and per visitor group
    target_tenant: str
    target_client: str
    ledger_ttl_days: int
    ledger_miss_ttl_days: int
    dry_run: bool
    tuning: RunTuning
    data_source_ids: dict[str, str] = field(default_factory=dict)
    report_suites: tuple[str, ...] = ()
    feeds: FeedHealthConfig = FeedHealthConfig({}, 1, 7, "")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EnrichFunctionConfig:
        aws_endpoint(env)
        names = destinations(env.get("DESTINATIONS", "datasources"))
        ids = data_source_ids(env)
        default = _check_destinations(env, names, ids)
        crm, crm_file, marketo = _crm(env)
        return cls(
            state_bucket=_bucket(env, "STATE_BUCKET"),
            state_table=_required(env, "STATE_TABLE"),
            destinations=names,
            data_source_id=default,
            mapping_file=env.get("MAPPING_FILE", "").strip(),
            mapping_key=env.get("MAPPING_KEY", "config/mapping.json").strip(),
            crm_source=crm,
            crm_file=crm_file,
            marketo=marketo,
            adobe_secret_arn=env.get("ADOBE_SECRET_ARN", "").strip(),
            bdia_visitor_group=env.get("BDIA_VISITOR_GROUP", "feedsync").strip() or "feedsync",
            bdia_pacing=(
                _seconds(env, "BDIA_INTERVAL_SECONDS", 1.0),
                _seconds(env, "BDIA_GROUP_INTERVAL_SECONDS", 20.0),
            ),
            target_tenant=env.get("ADOBE_TARGET_TENANT", "").strip(),
            target_client=env.get("ADOBE_TARGET_CLIENT", "").strip(),
            ledger_ttl_days=_int(env, "LEDGER_TTL_DAYS", 90, 1, 3650),
            ledger_miss_ttl_days=_int(env, "LEDGER_MISS_TTL_DAYS", 7, 1, 3650),
            dry_run=_flag(env, "DRY_RUN"),
            tuning=RunTuning.from_env(env),
            data_source_ids=ids,
            report_suites=_suites(env),
            feeds=FeedHealthConfig.from_env(env),
        )

    # shorthands the wiring and the registry read
    @property
    def batch_size(self) -> int:
        return self.tuning.batch_size

    @property
    def adobe_settle_seconds(self) -> float:
        return self.tuning.settle_seconds

    def data_source_for(self, rsid: str) -> str:
        """The data source account of a report suite; NotConfiguredError when it has none."""
        found = self.data_source_ids.get(rsid) or self.data_source_id
        if not found:
            raise NotConfiguredError(
                f"report suite {rsid} has no data source account: add {rsid}=<id> to "
                "DATA_SOURCE_IDS (or set DATA_SOURCE_ID)"
            )
        return found


def load_enrich_config(
    env: Mapping[str, str] = os.environ,
) -> tuple[EnrichFunctionConfig | None, str]:
    """The config, or None and what is wrong (the function starts "not configured")."""
    try:
        return EnrichFunctionConfig.from_env(env), ""
    except ConfigError as exc:
        return None, str(exc)
