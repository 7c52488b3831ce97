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
