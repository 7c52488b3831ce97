"""``feedsync local up``: a whole installation on loopback, for trying feedsync by hand.

A moto server stands in for AWS (the feed bucket, the state bucket, the state table with the
template's key schema, the two credential secrets, the mapping file) and the sandbox for Adobe
and Marketo. A demo delivery is generated into ``.local/delivery`` and put into the feed bucket
(where ``events/*.json`` name it), 10% of its pending visitors are loaded into the Marketo
stand-in, and ``.local/sam-env.json`` points ``sam local invoke --env-vars`` at all of it
(``events/env.local.json`` is the same file for the default ports). The README's sequence works
verbatim::

    feedsync local put .local/delivery s3://feedsync-feed-local/adobe/acmeprod/
    feedsync parse s3://feedsync-feed-local/adobe/acmeprod/acmeprod_2026-11-20.txt
    feedsync run-daily
    feedsync status
"""

from __future__ import annotations

import errno
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import feedgen
from sandbox.run import Sandbox
from sandbox.world import MAPPING

FEED_BUCKET = "feedsync-feed-local"
STATE_BUCKET = "feedsync-state-local"
STATE_TABLE = "feedsync-state-local"
REGION = "us-east-1"
FOLDER = "adobe/acmeprod/"
ADOBE_SECRET = "feedsync-local/adobe"  # Secrets Manager takes a name where an ARN goes
MARKETO_SECRET = "feedsync-local/marketo"
ALERT_TOPIC = "feedsync-alerts-local"
CHECK_FOLDER = "feedsync-check/"  # where `feedsync check` puts its test delivery


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_free(host: str, port: int, flag: str) -> None:
    """A busy port is said at once, naming it and the flag that picks another (never a wait
    on whoever holds it)."""
    if not port:
        return
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise OSError(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use (another `feedsync sandbox` or "
                f"`local up`?): choose another with {flag} PORT (0 = any free port)",
            ) from None


DEFAULT_AWS_PORT, DEFAULT_PORT = 5000, 8765


def sam_env(endpoint: str, sandbox_url: str) -> dict[str, dict[str, str]]:
    """``sam local invoke --env-vars``: every variable is one template.yaml declares (SAM
    drops the others); every endpoint is on loopback. events/env.local.json is this for the
    default ports."""
    from sandbox.adobe import AdobeAccount

    account = AdobeAccount()
    adobe = {f"ADOBE_{name}_URL": sandbox_url
             for name in ("IMS", "ANALYTICS", "BDIA", "TARGET", "TARGET_EDGE", "CJA",
                          "PLATFORM")}  # fmt: skip
    common = {"AWS_ENDPOINT_URL": endpoint, **adobe, "STATE_BUCKET": STATE_BUCKET,
              "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
    return {
        "ParseFeedFunction": {**common, "VISITOR_COLUMNS": "mcvisid",
                              "CRM_ID_COLUMN": "post_evar22"},
        "EnrichUploadFunction": {
            **common,
            "MARKETO_BASE_URL": sandbox_url,
            "STATE_TABLE": STATE_TABLE,
            "DESTINATIONS": "datasources",
            "DATA_SOURCE_ID": "101",
            "CRM_SOURCE": "marketo",
            "MAPPING_KEY": "config/mapping.json",
            "ADOBE_SECRET_ARN": ADOBE_SECRET,
            "MARKETO_SECRET_ARN": MARKETO_SECRET,
            "ADOBE_TARGET_TENANT": account.tenant,
            "ADOBE_TARGET_CLIENT": account.target_client,
            "ADOBE_SETTLE_SECONDS": "0",
            "DRY_RUN": "false",
        },
    }  # fmt: skip


class CheckParser(threading.Thread):
    """Stands in for the EventBridge rule that triggers ParseFeedFunction, for the test
    delivery `feedsync check` puts under feedsync-check/: each object is parsed as it lands,
    with the settings events/env.local.json gives the function. A delivery you put yourself
    is parsed by `feedsync parse`, as the README's sequence does."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True, name="feedsync-local-check-parser")
        self.endpoint = endpoint
        self.seen: set[tuple[str, str]] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        from feedsync.aws.s3 import S3Store
        from feedsync.config import parse_settings
        from feedsync.parse.step import handle_feed_object

        s3, _ = _aws(self.endpoint)
        feed, state = S3Store(s3, FEED_BUCKET), S3Store(s3, STATE_BUCKET)
        settings = parse_settings({"VISITOR_COLUMNS": "mcvisid", "CRM_ID_COLUMN": "post_evar22"})
        while not self.stopped.wait(1.0):
            listed = s3.list_objects_v2(Bucket=FEED_BUCKET).get("Contents", [])
            new = [(o["Key"], o["ETag"]) for o in listed
                   if CHECK_FOLDER in o["Key"] and (o["Key"], o["ETag"]) not in self.seen]  # fmt: skip
            for key, etag in sorted(new, key=lambda o: o[0].endswith(".txt")):  # manifest last
                self.seen.add((key, etag))
                handle_feed_object(feed, state, key, settings)


@dataclass
class LocalStack:
    moto: Any
    box: Sandbox
    endpoint: str
    workdir: Path
    topic_arn: str = ""
    parser: CheckParser | None = None

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "STATE_BUCKET": STATE_BUCKET,
            "STATE_TABLE": STATE_TABLE,
            "FEED_BUCKET": FEED_BUCKET,
            "ALERT_TOPIC_ARN": self.topic_arn,
            "DESTINATIONS": "datasources",
            "DATA_SOURCE_ID": "101",
            "CRM_SOURCE": "marketo",
            "ADOBE_SETTLE_SECONDS": "0",
            **self.box.env(),
        }

    def sam_env(self) -> dict[str, dict[str, str]]:
        return sam_env(self.endpoint, self.box.url)

    def stop(self) -> None:
        if self.parser is not None:
            self.parser.stopped.set()
            self.parser.join(timeout=5)
        self.box.stop()
        self.moto.stop()


def _client(endpoint: str, service: str) -> Any:
    """A boto3 client of the local moto server."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip


def _aws(endpoint: str) -> tuple[Any, Any]:
    return _client(endpoint, "s3"), _client(endpoint, "dynamodb")


def create_stores(endpoint: str) -> None:
    """The buckets and the table, with the template's key schema (pk/sk strings, TTL)."""
    s3, dynamodb = _aws(endpoint)
    for bucket in (FEED_BUCKET, STATE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    dynamodb.create_table(
        TableName=STATE_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    dynamodb.update_time_to_live(
        TableName=STATE_TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    s3.put_object(Bucket=STATE_BUCKET, Key="config/mapping.json", Body=json.dumps(MAPPING).encode())
    # as the stack's feed bucket: its events go to EventBridge (`feedsync check` asks)
    s3.put_bucket_notification_configuration(
        Bucket=FEED_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def create_alerts(endpoint: str) -> str:
    """The alert topic with one subscriber and an alarm that notifies it, as the stack has."""
    sns, cloudwatch = _client(endpoint, "sns"), _client(endpoint, "cloudwatch")
    topic = str(sns.create_topic(Name=ALERT_TOPIC)["TopicArn"])
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    cloudwatch.put_metric_alarm(
        AlarmName="feedsync-local-ParseFailures", Namespace="feedsync", MetricName="ParseFailures",
        Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic],
    )  # fmt: skip
    return topic


def create_secrets(endpoint: str, box: Sandbox) -> None:
    """The credential secrets the functions read, holding the stand-ins' credentials."""
    secrets = _client(endpoint, "secretsmanager")
    account = box.adobe.account
    adobe = {"CLIENT_ID": account.client_id, "CLIENT_SECRETS": [account.client_secret],
             "ORG_ID": account.org_id, "SCOPES": ["openid", "AdobeID", "read_organizations"]}  # fmt: skip
    marketo = {"client_id": box.marketo.client_id, "client_secret": box.marketo.client_secret}
    for name, value in ((ADOBE_SECRET, adobe), (MARKETO_SECRET, marketo)):
        secrets.create_secret(Name=name, SecretString=json.dumps(value))


def demo_delivery(workdir: Path) -> feedgen.Delivery:
    rng = random.Random(2026)
    files = [feedgen.random_hits(5_000, rng, 1_500) for _ in range(2)]
    return feedgen.make_delivery(workdir / "delivery", files)


def start(
    workdir: Path, host: str = "127.0.0.1", moto_port: int = 0, sandbox_port: int = 0
) -> LocalStack:
    from moto.server import ThreadedMotoServer

    from sandbox import moto_patches

    moto_patches.install()
    # moto's server logs every request (werkzeug's access log): a flood on the terminal the
    # exports are read from; errors still show
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    port = moto_port or free_port()
    check_free(host, port, "--aws-port")
    check_free(host, sandbox_port, "--port")
    moto = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    moto.start()
    endpoint = f"http://{host}:{port}"
    create_stores(endpoint)
    box = Sandbox.start(host, sandbox_port, bdia_interval=0.0, bdia_group_interval=0.0)
    create_secrets(endpoint, box)
    delivery = demo_delivery(workdir)
    for visitor in sorted(delivery.expected.final_pending)[::10]:
        box.marketo.add_lead(visitor, Account_Type__c="Customer", Industry="Retail")
    parser = CheckParser(endpoint)
    parser.start()
    stack = LocalStack(moto, box, endpoint, workdir, create_alerts(endpoint), parser)
    _put(endpoint, workdir / "delivery", f"s3://{FEED_BUCKET}/{FOLDER}")  # where events/ look
    (workdir / "sam-env.json").write_text(json.dumps(stack.sam_env(), indent=2) + "\n")
    return stack


def _put(endpoint: str, folder: Path, target: str) -> None:
    s3, _ = _aws(endpoint)
    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    for name in _adobe_order(folder):
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=(folder / name).read_bytes())


def _adobe_order(folder: Path) -> list[str]:
    """Data files, the lookup archive, the manifest last - as Adobe delivers."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    order = [n for n in names if n.endswith(".tsv.gz")]
    order += [n for n in names if n.endswith(".tar.gz")]
    return order + [n for n in names if n.endswith(".txt")]


def load_leads(box: Sandbox, path: Path) -> int:
    """Leads from JSON Lines (one object a line) or CSV with a header, keyed by the stand-in's
    visitor id field (Adobe_Visitor_ID)."""
    import csv

    text = path.read_text(encoding="utf-8-sig")
    rows: list[dict[str, Any]]
    if text.lstrip().startswith("{"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(text.splitlines()))
    field = box.marketo.id_field
    count = 0
    for row in rows:
        visitor = str(row.pop(field, "") or "")
        if visitor:
            box.marketo.add_lead(visitor, **row)
            count += 1
    return count


def put_delivery(folder: Path, target: str) -> list[str]:
    """Upload a delivery folder the way Adobe does: data files, lookup archive, manifest last.
    Only to the local stand-in: without AWS_ENDPOINT_URL on loopback it refuses (a real
    bucket takes `aws s3 cp`, which does not order the manifest last)."""
    import os
    from urllib.parse import urlsplit

    import boto3

    from feedsync.errors import ConfigError

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            "local put writes to `feedsync local up`'s stand-in only: export the lines "
            "`feedsync local up` printed (AWS_ENDPOINT_URL=http://127.0.0.1:5000 ...) first"
        )
    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    order = _adobe_order(folder)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for name in order:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=(folder / name).read_bytes())
    return [f"s3://{bucket}/{prefix}{n}" for n in order]


def serve(workdir: Path, host: str, moto_port: int, sandbox_port: int) -> None:
    stack = start(workdir, host, moto_port, sandbox_port)
    print("# feedsync local: AWS (moto) and Adobe/Marketo (sandbox) on loopback. Export these:")
    for name, value in stack.env().items():
        print(f"export {name}={value}")
    print(f"# sam local invoke --env-vars {workdir / 'sam-env.json'} (see README, sam local)")
    print("# then, as the README says:")
    print(f"#   feedsync local put {workdir / 'delivery'} s3://{FEED_BUCKET}/{FOLDER}")
    print(f"#   feedsync parse s3://{FEED_BUCKET}/{FOLDER}acmeprod_2026-11-20.txt")
    print("#   feedsync run-daily")
    print("#   feedsync status")
    print("# Ctrl-C stops everything", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stack.stop()
