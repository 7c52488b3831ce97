"""``feedsync check``: is a deployed stack ready for Adobe's first delivery? Each check is one
line - what was checked, and on a failure what to do - and none of them changes anything
except the synthetic delivery, which is written under a test prefix and removed again.

The settings come from the environment, which ``--stack`` fills from the stack's outputs and
the daily function's own settings (cli/stack.py).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from feedsync.errors import ConfigError, FeedsyncError


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise FeedsyncError(f"{name} is not set (use --stack NAME, or export it)")
    return value


def _clients() -> dict[str, Any]:
    import boto3

    return {n: boto3.client(n) for n in ("s3", "cloudwatch", "sns", "secretsmanager")}


def check_adobe(_: dict[str, Any]) -> str:
    from feedsync.cli.common import analytics_client

    analytics = analytics_client()
    company = analytics.company_id
    return f"token issued; company {company}"


def check_marketo(_: dict[str, Any]) -> str:
    from feedsync.aws.clients import AwsClients
    from feedsync.aws.s3 import S3Store
    from feedsync.config import EnrichFunctionConfig
    from feedsync.deadline import Deadline
    from feedsync.wiring import _marketo_client, load_mapping

    config = EnrichFunctionConfig.from_env(os.environ)
    if config.marketo is None:
        return f"not used (CRM_SOURCE={config.crm_source})"
    clients = AwsClients.create(config.state_table)
    client = _marketo_client(config.marketo, clients, Deadline.after(60))
    client.token()  # the credential first: a wrong one is named before anything else
    try:
        mapping = load_mapping(config, S3Store(clients.s3, config.state_bucket))
    except ConfigError:
        return "token issued; the visitor id field is checked once the mapping file is there"
    client.lookup(mapping.visitor_id_field, ["feedsync-check"], ["id"])  # 1003 if not a filter
    return f"token issued; {mapping.visitor_id_field} is a lead field Marketo searches by"


def check_mapping(_: dict[str, Any]) -> str:
    from feedsync.aws.clients import AwsClients
    from feedsync.aws.s3 import S3Store
    from feedsync.config import EnrichFunctionConfig
    from feedsync.wiring import load_mapping

    config = EnrichFunctionConfig.from_env(os.environ)
    state = S3Store(AwsClients.create(config.state_table).s3, config.state_bucket)
    mapping = load_mapping(config, state)
    return f"{len(mapping.columns)} CRM fields -> {', '.join(mapping.columns.values())}"


def check_data_sources(_: dict[str, Any]) -> str:
    from feedsync.adobe.datasources import DataSourcesClient
    from feedsync.cli.common import analytics_client
    from feedsync.config import data_source_ids

    ids = data_source_ids(os.environ)
    default = os.environ.get("DATA_SOURCE_ID", "").strip()
    suites = dict(ids)
    wanted = [s for s in os.environ.get("REPORT_SUITES", "").split(",") if s.strip()]
    for suite in wanted:
        suites.setdefault(suite.strip(), default)
    if not suites:
        return "no report suite named (DATA_SOURCE_IDS / REPORT_SUITES): each delivery's suite " \
               f"uses DATA_SOURCE_ID={default or '(not set)'}"  # fmt: skip
    client = DataSourcesClient(analytics_client())
    missing = []
    for suite, account in suites.items():
        found = {str(a.get("data_source_id") or a.get("id")) for a in client.accounts(suite)}
        if str(account) not in found:
            missing.append(f"{suite} has no data source {account} (it has {sorted(found)})")
    if missing:
        raise FeedsyncError("; ".join(missing))
    return ", ".join(f"{s}: {a}" for s, a in suites.items())


def check_data_feeds(_: dict[str, Any]) -> str:
    """Each report suite's data feed on Adobe's side (DATA_FEED_IDS, optional)."""
    from feedsync.adobe.datafeeds import DataFeedClient
    from feedsync.cli.common import analytics_client
    from feedsync.config import data_feed_ids, data_source_ids
    from feedsync.feeds.requests import FeedRequest

    feeds = data_feed_ids(os.environ)
    suites = set(feeds) | set(data_source_ids(os.environ))
    suites |= {s.strip() for s in os.environ.get("REPORT_SUITES", "").split(",") if s.strip()}
    without = sorted(suites - set(feeds))
    parts = []
    if feeds:
        client = DataFeedClient(analytics_client())
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y-%m-%dT00:00:00Z")
        for rsid, feed_id in sorted(feeds.items()):
            found = [r for r in map(FeedRequest.from_adobe, client.requests(rsid, feed_id, since))
                     if r is not None]  # fmt: skip
            latest = max(found, key=lambda r: (r.day, r.hour or ""), default=None)
            said = (
                f"latest {latest.period} {latest.raw_state}" if latest else "no request in 3 days"
            )
            parts.append(f"{rsid}: feed {feed_id}, {said}")
    if without:
        parts.append(f"{', '.join(without)}: no DataFeedIds entry - Adobe's side is not "
                     "followed (lateness alarm only); add rsid=<feed id> to follow it")  # fmt: skip
    return "; ".join(parts) or "no DataFeedIds: Adobe's side of the feed is not followed"


def check_notifications(clients: dict[str, Any]) -> str:
    bucket = _env("FEED_BUCKET")
    config = clients["s3"].get_bucket_notification_configuration(Bucket=bucket)
    if "EventBridgeConfiguration" not in config:
        raise FeedsyncError(
            f"{bucket} does not send events to EventBridge: turn it on (README 'Using a bucket "
            "Adobe already writes to' merges it with the bucket's other notifications)"
        )
    return f"{bucket} sends its events to EventBridge"


def check_alarms(clients: dict[str, Any]) -> str:
    topic = _env("ALERT_TOPIC_ARN")
    pages = clients["cloudwatch"].get_paginator("describe_alarms").paginate()
    alarms = [
        a for p in pages for a in p.get("MetricAlarms", []) if topic in a.get("AlarmActions", [])
    ]
    subscriptions = clients["sns"].list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
    pending = len(subscriptions) - len(confirmed)
    if not alarms:
        raise FeedsyncError(f"no alarm notifies {topic}")
    if not confirmed:
        raise FeedsyncError(
            f"{len(alarms)} alarms notify the topic, but nobody receives it: "
            + (f"{pending} subscription(s) await confirmation (the mail's link)" if pending
               else "subscribe an address (AlertEmail) or a chat hook")
        )  # fmt: skip
    return f"{len(alarms)} alarms notify the topic; {len(confirmed)} confirmed subscription(s)"


def check_synthetic(clients: dict[str, Any], wait: float = 180.0) -> str:
    """A small generated delivery under a test prefix, parsed by the deployed function; then
    removed (feed objects, results, record)."""
    from feedsync.aws.s3 import S3Store
    from feedsync.state.forget import forget
    from feedsync.state.layout import StateLayout

    feed = S3Store(clients["s3"], _env("FEED_BUCKET"))
    state = S3Store(clients["s3"], _env("STATE_BUCKET"))
    prefix = os.environ.get("FEED_PREFIX", "").strip("/")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    folder = f"{prefix + '/' if prefix else ''}feedsync-check/{stamp}/"
    files = synthetic_delivery()
    for name in sorted(files, key=lambda n: n.endswith(".txt")):  # the manifest last
        feed.put(folder + name, files[name])
    key = StateLayout.delivery_key(folder, SYNTHETIC)
    started = time.monotonic()
    try:
        while time.monotonic() - started < wait:
            record = state.get(StateLayout.record(key))
            if record is not None:
                import json

                data = json.loads(record)
                if not data.get("complete"):
                    raise FeedsyncError(f"the test delivery failed: {'; '.join(data['reasons'])}")
                took = time.monotonic() - started
                return f"a test delivery was parsed by the deployed function in {took:.0f} s"
            time.sleep(2)
        raise FeedsyncError(
            f"no delivery record {StateLayout.record(key)} after {wait:.0f} s: are the feed "
            "bucket's EventBridge notifications on, and is ParseFeedFunction triggered "
            "(its log, ParseFailuresQueue)?"
        )
    finally:
        for name in files:
            feed.delete(folder + name)
        forget(state, None, key)


SYNTHETIC = "feedsynccheck_2000-01-01"


def synthetic_delivery() -> dict[str, bytes]:
    """20 hits in Adobe's layout, with the columns the parse function is set to read."""
    from feedsync.datafeed import synthetic

    columns = tuple(c for c in os.environ.get("VISITOR_COLUMNS", "mcvisid").split(",") if c)
    crm_id = os.environ.get("CRM_ID_COLUMN", "post_evar22") or "post_evar22"
    rsid, day = SYNTHETIC.rsplit("_", 1)
    rng = random.Random(1)  # noqa: S311 - test ids, not secrets
    return synthetic.delivery(rsid, day, rng, 20, columns, crm_id)


def check_report_suites(_: dict[str, Any]) -> str:
    """REPORT_SUITES names suites that have deliveries (a typo silently stops enrichment)."""
    from feedsync.aws.s3 import S3Store
    from feedsync.config import report_suites
    from feedsync.state.layout import DELIVERIES, StateLayout

    suites = report_suites(os.environ)
    if not suites:
        return "every report suite is enriched (REPORT_SUITES is empty)"
    import boto3

    state = S3Store(boto3.client("s3"), _env("STATE_BUCKET"))
    keys = StateLayout.keys_of_records(state.list(DELIVERIES))
    present = {k.rsplit("/", 1)[-1].rsplit("_", 1)[0] for k in keys}
    missing = [s for s in suites if s not in present]
    others = sorted(present - set(suites))
    if present and not set(suites) & present:
        raise ConfigError(f"REPORT_SUITES={','.join(suites)} names none of the suites with "
                          f"deliveries here ({', '.join(others)}): check its spelling")  # fmt: skip
    said = f"{', '.join(suites)} enriched"
    if missing:
        said += f"; no delivery of {', '.join(missing)} yet"
    if others:
        said += f"; ignored: {', '.join(others)} (DeliveriesIgnoredAlarm)"
    return said


CHECKS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("report suites", check_report_suites),
    ("Adobe credential", check_adobe),
    ("Marketo credential and field", check_marketo),
    ("mapping file", check_mapping),
    ("data source accounts", check_data_sources),
    ("data feeds at Adobe", check_data_feeds),
    ("feed bucket notifications", check_notifications),
    ("alarms reach a person", check_alarms),
    ("test delivery", check_synthetic),
]


def run_checks(skip: set[str] | None = None, wait: float = 180.0) -> Iterator[Result]:
    clients = _clients()
    for name, check in CHECKS:
        if skip and name in skip:
            continue
        try:
            detail = check_synthetic(clients, wait) if check is check_synthetic else check(clients)
            yield Result(name, True, detail)
        except Exception as exc:  # every failure is one line naming what to fix
            from feedsync.cli.errors import explain

            known = explain(exc)
            yield Result(name, False, known[0] if known else f"{type(exc).__name__}: {exc}")
