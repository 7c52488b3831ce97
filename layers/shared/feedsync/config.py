"""Settings read from the environment once, at cold start, and validated.

A bad or missing setting fails with a ConfigError that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from feedsync.errors import ConfigError
from feedsync.pipeline.parse import ParseSettings

_COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def columns(value: str, name: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    bad = [p for p in parts if not _COLUMN.fullmatch(p)]
    if not parts or bad:
        raise ConfigError(f"{name}={value!r}: expected data feed column names, e.g. mcvisid")
    return parts


def parse_settings(env: Mapping[str, str]) -> ParseSettings:
    visitor = columns(env.get("VISITOR_COLUMNS", "mcvisid"), "VISITOR_COLUMNS")
    crm = columns(env.get("CRM_ID_COLUMN", "post_evar22"), "CRM_ID_COLUMN")
    if len(crm) != 1:
        raise ConfigError(f"CRM_ID_COLUMN={','.join(crm)!r}: name exactly one column")
    if crm[0] in visitor:
        raise ConfigError("CRM_ID_COLUMN must differ from the VISITOR_COLUMNS")
    return ParseSettings(visitor_columns=visitor, crm_id_column=crm[0])


@dataclass(frozen=True)
class ParseFunctionConfig:
    state_bucket: str
    settings: ParseSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ParseFunctionConfig:
        bucket = _required(env, "STATE_BUCKET")
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(f"STATE_BUCKET={bucket!r} is not an S3 bucket name")
        return cls(state_bucket=bucket, settings=parse_settings(env))


DESTINATIONS = ("datasources", "bdia", "datasources14", "target")
_TRUE = ("1", "true", "yes", "on")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: expected {low}..{high}")
    return value


@dataclass(frozen=True)
class EnrichFunctionConfig:
    """Everything the daily run needs, checked once. Secrets are fetched later, by ARN."""

    state_bucket: str
    state_table: str
    destinations: tuple[str, ...]
    data_source_id: str
    mapping_file: str  # a local path, or "" to read mapping_key from the state bucket
    mapping_key: str
    crm_source: str  # marketo | file
    crm_file: str  # s3://bucket/key or a path, for crm_source=file
    marketo_base_url: str
    marketo_secret_arn: str
    marketo_calls: int
    marketo_concurrency: int
    marketo_window: float
    adobe_secret_arn: str
    bdia_visitor_group: str
    target_tenant: str
    target_client: str
    ledger_ttl_days: int
    ledger_miss_ttl_days: int
    batch_size: int
    dry_run: bool
    max_continuations: int
    function_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EnrichFunctionConfig:
        bucket = _required(env, "STATE_BUCKET")
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(f"STATE_BUCKET={bucket!r} is not an S3 bucket name")
        destinations = tuple(
            d.strip().lower()
            for d in env.get("DESTINATIONS", "datasources").split(",")
            if d.strip()
        )
        unknown = [d for d in destinations if d not in DESTINATIONS]
        if not destinations or unknown:
            raise ConfigError(
                f"DESTINATIONS={env.get('DESTINATIONS')!r}: choose from {', '.join(DESTINATIONS)}"
            )
        data_source_id = env.get("DATA_SOURCE_ID", "").strip()
        if {"datasources", "datasources14"} & set(destinations) and not data_source_id.isdigit():
            raise ConfigError(
                "DATA_SOURCE_ID is not set: the data source account id (feedsync datasources "
                "accounts RSID lists them)"
            )
        crm = env.get("CRM_SOURCE", "marketo").strip().lower()
        if crm not in ("marketo", "file"):
            raise ConfigError(f"CRM_SOURCE={crm!r}: expected 'marketo' or 'file'")
        base = env.get("MARKETO_BASE_URL", "").strip().rstrip("/")
        if crm == "marketo":
            if not re.fullmatch(r"https?://[^/\s]+(/rest)?", base):
                raise ConfigError(
                    f"MARKETO_BASE_URL={base!r}: expected the REST base, e.g. "
                    "https://123-ABC-456.mktorest.com"
                )
            if not env.get("MARKETO_SECRET_ARN") and not (
                env.get("MARKETO_CLIENT_ID") and env.get("MARKETO_CLIENT_SECRET")
            ):
                raise ConfigError(
                    "set MARKETO_SECRET_ARN, or MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET"
                )
        crm_file = env.get("CRM_FILE", "").strip()
        if crm == "file" and not crm_file:
            raise ConfigError("CRM_FILE is not set (s3://bucket/key of the CRM export)")
        if "target" in destinations and not (
            env.get("ADOBE_TARGET_TENANT") and env.get("ADOBE_TARGET_CLIENT")
        ):
            raise ConfigError(
                "the target destination needs ADOBE_TARGET_TENANT and ADOBE_TARGET_CLIENT"
            )
        try:
            window = float(env.get("MARKETO_WINDOW_SECONDS", "20") or 20)
        except ValueError:
            raise ConfigError("MARKETO_WINDOW_SECONDS: expected seconds") from None
        return cls(
            state_bucket=bucket,
            state_table=_required(env, "STATE_TABLE"),
            destinations=destinations,
            data_source_id=data_source_id,
            mapping_file=env.get("MAPPING_FILE", "").strip(),
            mapping_key=env.get("MAPPING_KEY", "config/mapping.json").strip(),
            crm_source=crm,
            crm_file=crm_file,
            marketo_base_url=base.removesuffix("/rest"),
            marketo_secret_arn=env.get("MARKETO_SECRET_ARN", "").strip(),
            marketo_calls=_int(env, "MARKETO_CALLS_PER_20S", 50, 1, 100),
            marketo_concurrency=_int(env, "MARKETO_CONCURRENCY", 5, 1, 10),
            marketo_window=window,
            adobe_secret_arn=env.get("ADOBE_SECRET_ARN", "").strip(),
            bdia_visitor_group=env.get("BDIA_VISITOR_GROUP", "feedsync").strip() or "feedsync",
            target_tenant=env.get("ADOBE_TARGET_TENANT", "").strip(),
            target_client=env.get("ADOBE_TARGET_CLIENT", "").strip(),
            ledger_ttl_days=_int(env, "LEDGER_TTL_DAYS", 90, 1, 3650),
            ledger_miss_ttl_days=_int(env, "LEDGER_MISS_TTL_DAYS", 7, 1, 3650),
            batch_size=_int(env, "BATCH_SIZE", 15_000, 300, 1_000_000),
            dry_run=env.get("DRY_RUN", "false").strip().lower() in _TRUE,
            max_continuations=_int(env, "MAX_CONTINUATIONS", 50, 0, 1000),
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip(),
        )
