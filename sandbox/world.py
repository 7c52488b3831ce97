"""A whole feedsync installation in one process: moto S3/DynamoDB/Secrets Manager, the Adobe and
Marketo stand-ins, parsed deliveries, and the real EnrichUploadFunction handler.

Used by the integration tests and by ``make demo``. The caller keeps ``moto.mock_aws`` active.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from feedsync.aws.s3 import S3Store
from feedsync.datafeed.naming import parse_feed_name
from feedsync.parse.results import pending_visitors
from feedsync.parse.step import close_delivery
from feedsync.settings import ParseSettings
from feedsync.state.records import DeliveryRecord
from feedsync.storage import LocalStore, get_json
from sandbox import moto_patches
from sandbox.lambda_context import FakeLambdaContext
from sandbox.run import Sandbox

moto_patches.install()

ROOT = Path(__file__).resolve().parents[1]
STATE_BUCKET = "feedsync-state-world"
FEED_BUCKET = "feedsync-feed-world"
TABLE = "feedsync-state-table-world"
FOLDER = "adobe/acmeprod/"
MAPPING = {
    "visitor_id_field": "Adobe_Visitor_ID",
    "success_event": "Event 51",
    "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23", "Industry": "Evar 24"},
}
ACCOUNT_TYPES = ("Customer", "Partner", "Prospect", "Customer; Gold", "Reseller\tEMEA")


def create_state_table(name: str) -> Any:
    """StateTable as template.yaml defines it (string pk/sk, on demand), in moto."""
    return boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class LambdaInvocations:
    """Stands in for the boto3 Lambda client the handler uses to continue itself."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert InvocationType == "Event"
        self.events.append(json.loads(Payload))
        return {"StatusCode": 202}


class World:
    def __init__(self, box: Sandbox, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.box = box
        self.workdir = workdir
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.s3.create_bucket(Bucket=STATE_BUCKET)
        self.state = S3Store(self.s3, STATE_BUCKET)
        self.table = create_state_table(TABLE)
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        account = box.adobe.account
        adobe_arn = secrets.create_secret(
            Name="feedsync/adobe",
            SecretString=json.dumps(
                {
                    "CLIENT_ID": account.client_id,
                    "CLIENT_SECRETS": [account.client_secret],
                    "ORG_ID": account.org_id,
                    "SCOPES": ["openid", "AdobeID", "read_organizations"],
                }
            ),
        )["ARN"]
        marketo_arn = secrets.create_secret(
            Name="feedsync/marketo",
            SecretString=json.dumps(
                {"client_id": box.marketo.client_id, "client_secret": box.marketo.client_secret}
            ),
        )["ARN"]
        self.put_mapping(MAPPING)
        urls = {k: v for k, v in box.env().items() if k.endswith("_URL")}
        self.env = {
            **urls,
            "STATE_BUCKET": STATE_BUCKET,
            "STATE_TABLE": TABLE,
            "DESTINATIONS": "datasources",
            "DATA_SOURCE_ID": "101",
            "CRM_SOURCE": "marketo",
            "MARKETO_SECRET_ARN": marketo_arn,
            "ADOBE_SECRET_ARN": adobe_arn,
            "ADOBE_TARGET_TENANT": account.tenant,
            "ADOBE_TARGET_CLIENT": account.target_client,
            "BATCH_SIZE": "300",
            "MARKETO_CALLS_PER_20S": str(min(100, box.marketo.calls_per_window)),
            "MARKETO_WINDOW_SECONDS": str(box.marketo.window),
            "MARKETO_CONCURRENCY": str(box.marketo.concurrency),
            "POWERTOOLS_SERVICE_NAME": "feedsync",
            "POWERTOOLS_METRICS_NAMESPACE": "feedsync",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.lambda_calls = LambdaInvocations()

    def put_mapping(self, mapping: dict[str, Any]) -> None:
        self.state.put("config/mapping.json", json.dumps(mapping).encode())

    def deliver(
        self, hits_per_file: list[list[Any]], day: str, rsid: str = "acmeprod"
    ) -> dict[str, Any]:
        """Write a generated delivery and parse it into the state bucket, as ParseFeedFunction does."""
        from sandbox import feedgen

        folder = FOLDER.replace("acmeprod", rsid)
        delivery = feedgen.make_delivery(
            self.workdir / day / folder, hits_per_file, day=day, rsid=rsid
        )
        name = parse_feed_name(delivery.manifest_name)
        record = close_delivery(
            LocalStore(self.workdir / day),
            self.state,
            folder,
            name.delivery,
            ParseSettings(("mcvisid",), "post_evar22"),
        )
        return record.to_json()  # as stored: what an operator reads

    def deliver_to_bucket(
        self,
        hits_per_file: list[list[Any]],
        day: str,
        rsid: str = "acmeprod",
        corrupt: bool = False,
    ) -> dict[str, Any]:
        """As Adobe delivers: the files into the feed bucket (moto), manifest last, then the
        parse step closes the delivery from there. ``corrupt``: the first data file's bytes
        differ from what its manifest says (a bad transfer: MD5 and size fail)."""
        from sandbox import feedgen

        folder = FOLDER.replace("acmeprod", rsid)
        delivery = feedgen.make_delivery(self.workdir, hits_per_file, day=day, rsid=rsid,
                                         write=False)  # fmt: skip
        self.s3.create_bucket(Bucket=FEED_BUCKET)
        names = sorted(delivery.files, key=lambda n: n == delivery.manifest_name)
        for name in names:
            body = delivery.files[name]
            if corrupt and name.startswith("01-"):
                body = body[: len(body) // 2]
            self.s3.put_object(Bucket=FEED_BUCKET, Key=folder + name, Body=body)
        name = parse_feed_name(delivery.manifest_name)
        record = close_delivery(
            S3Store(self.s3, FEED_BUCKET), self.state, folder, name.delivery,
            ParseSettings(("mcvisid",), "post_evar22"),
        )  # fmt: skip
        return record.to_json()

    def pending(self, record: dict[str, Any]) -> list[str]:
        return list(pending_visitors(self.state, DeliveryRecord.from_json(record)))

    def add_leads(self, visitors: list[str], seed: int = 5) -> dict[str, dict[str, Any]]:
        rng = random.Random(seed)
        leads = {}
        for visitor in visitors:
            fields = {
                "Account_Type__c": rng.choice(ACCOUNT_TYPES),
                "Industry": rng.choice(("Retail", "Finance", None)),
            }
            self.box.marketo.add_lead(visitor, **fields)
            leads[visitor] = self.box.marketo.leads[visitor][0]
        return leads

    def handler(self, monkeypatch: Any = None) -> ModuleType:
        import os

        for name, value in self.env.items():
            if monkeypatch is not None:
                monkeypatch.setenv(name, value)
            else:
                os.environ[name] = value
        path = str(ROOT / "functions" / "enrich_upload")
        if path not in sys.path:
            sys.path.insert(0, path)
        # a warm container: the same world and settings reuse the loaded handler, as Lambda
        # reuses a warm execution environment; anything else is a cold start
        warm = (id(self), frozenset(os.environ.items()))
        module = sys.modules.get("enrich_upload")
        if module is None:
            module = importlib.import_module("enrich_upload")
        elif getattr(module, "_world", None) != warm:
            module = importlib.reload(module)
        module._world = warm  # type: ignore[attr-defined]
        if module.CLIENTS is not None:  # None: the function is not configured
            module.CLIENTS = dataclasses.replace(module.CLIENTS, lambda_=self.lambda_calls)
        return module

    def invoke(
        self, event: dict[str, Any], context: Any = None, monkeypatch: Any = None
    ) -> dict[str, Any]:
        """One invocation with this installation's settings, which leave the process's
        environment afterwards (as a Lambda environment ends with its invocation): no setting
        of one test's function reaches the next test in the same process."""
        import os

        saved = dict(os.environ)
        try:
            module = self.handler(monkeypatch)
            result: dict[str, Any] = module.lambda_handler(
                event, context or FakeLambdaContext("EnrichUploadFunction")
            )
        finally:
            if monkeypatch is None:
                os.environ.clear()
                os.environ.update(saved)
        return result

    def report(self, key: str) -> dict[str, Any]:
        report = get_json(self.state, f"reports/{key}.json")
        assert report is not None, key
        return report

    def uploaded_rows(self) -> list[list[str]]:
        """Every data row Adobe's Data Sources stand-in accepted, across jobs."""
        rows = []
        for data in self.box.adobe.datasource_files.values():
            lines = [x for x in data.decode().splitlines() if x and not x.startswith("#")]
            rows.extend(line.split("\t") for line in lines[1:])
        return rows
