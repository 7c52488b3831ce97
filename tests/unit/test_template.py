"""template.yaml read by tests: alarms reach a person, the dashboard shows metrics the code
emits, the DLQ is the watched queue (in the transformed template), storage and IAM are hardened."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from feedsync import metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    loaded, problems = decode(str(ROOT / "template.yaml"))
    assert not problems and loaded is not None
    return json.loads(json.dumps(loaded, default=str))


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The template as CloudFormation receives it (after `sam package`, SAM's transform)."""
    import os

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    packaged = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        props = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if uri in props:
                props[uri] = "s3://bucket/artifact.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(packaged, {}, NoManagedPolicies())  # type: ignore[arg-type]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_alarm_notifies_the_alert_topic_when_it_fires_and_clears(template: dict) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlertTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlertTopic"}], name
        for metric in _alarm_metrics(props):  # one metric, or metric math over several
            if metric["Namespace"] == "feedsync":
                assert metric["MetricName"] in metrics.ALL, (
                    f"{name}: no code emits {metric['MetricName']}"
                )
    wanted = {"DeliveriesFailed", "DeliveriesComplete", "CrmQuotaExhausted", "UploadsFailedAtAdobe",
              "DailyRunsCompleted", "NotConfigured", "FeedRequestsFailedAtAdobe",
              "FeedRequestStatesUnknown", "FeedDeliveriesMissing",
              "FeedDeliveriesCorrupt"}  # fmt: skip
    alarmed = {m["MetricName"] for a in alarms.values() for m in _alarm_metrics(a["Properties"])}
    assert wanted <= alarmed
    late = alarms["FeedLateAlarm"]["Properties"]
    assert (
        late["EvaluationPeriods"] == {"Ref": "FeedLateHours"}
        and late["TreatMissingData"] == "breaching"
    )
    assert template["Parameters"]["FeedLateHours"]["Default"] == 36
    assert "AlertTopicArn" in template["Outputs"] and "AlertEmail" in template["Parameters"]


def _alarm_metrics(props: dict) -> list[dict]:
    """The metrics an alarm reads: its one metric, or those its metric math combines."""
    if "Metrics" in props:
        return [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q]
    return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"]}]


def test_the_dashboard_graphs_only_metrics_the_code_emits(template: dict) -> None:
    dashboard = resources(template, "AWS::CloudWatch::Dashboard")["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == {"Ref": "AWS::StackName"}
    body = dashboard["DashboardBody"]["Fn::Sub"][0]
    names = set()
    for widget in json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]:
        namespace = None
        for line in widget["properties"]["metrics"]:
            namespace = line[0] if line[0] != "..." else namespace
            if namespace == "feedsync" and line[0] != "...":
                names.add(line[1] if line[1] != "." else None)
    names.discard(None)
    for line in re.findall(r'\["feedsync", "(\w+)"', body) + re.findall(r'\["\.", "(\w+)"', body):
        names.add(line)
    assert names <= set(metrics.ALL), names - set(metrics.ALL)
    needed = {"Rows", "RowsExcluded", "DeliveriesComplete", "DeliveriesFailed", "VisitorsPending",
              "VisitorsLookedUp", "VisitorsMatched", "RowsUploaded", "RowsRejected", "CrmCalls",
              "CrmQuotaExhausted", "AdobeApiErrors"}  # fmt: skip
    assert needed <= names
    for aws in ('"Errors"', '"Duration"', '"Throttles"'):
        assert aws in body
    assert "DashboardUrl" in template["Outputs"]


def test_the_parse_rules_dead_letters_go_to_the_watched_queue(transformed: dict) -> None:
    rule = transformed["Resources"]["ParseFeedFunctionFeedObjectCreated"]
    dlq = rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    assert dlq == {"Fn::GetAtt": ["ParseFailuresQueue", "Arn"]}
    queues = resources(transformed, "AWS::SQS::Queue")
    assert set(queues) == {"ParseFailuresQueue", "EnrichFailuresQueue"}  # none SAM made unwatched
    policy = transformed["Resources"]["ParseFailuresQueuePolicy"]["Properties"]["PolicyDocument"]
    condition = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert condition == {"Fn::GetAtt": ["ParseFeedFunctionFeedObjectCreated", "Arn"]}


def test_the_schedule_is_named_per_stack(transformed: dict) -> None:
    schedule = resources(transformed, "AWS::Scheduler::Schedule")
    (only,) = schedule.values()
    assert only["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-daily-run"}


def test_buckets_refuse_plain_http_and_keep_personal_data_only_so_long(template: dict) -> None:
    for policy in ("FeedBucketPolicy", "StateBucketPolicy"):
        statement = template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    feed = template["Resources"]["FeedBucket"]["Properties"]
    assert feed["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {
        "Ref": "FeedRetentionDays"
    }
    assert template["Parameters"]["FeedRetentionDays"]["Default"] == 30
    state = template["Resources"]["StateBucket"]["Properties"]
    assert state["VersioningConfiguration"]["Status"] == "Enabled"
    expiring = {
        r["Prefix"]: r["ExpirationInDays"]
        for r in state["LifecycleConfiguration"]["Rules"]
        if "ExpirationInDays" in r
    }
    written = ("results/", "deliveries/", "enriched/", "reports/", "runs/", "backfills/")
    assert expiring == {
        **{key: {"Ref": "StateRetentionDays"} for key in written},
        # identifiers with CRM data: kept shorter, each under a parameter of its own (issue 28)
        "uploads/": {"Ref": "UploadRetentionDays"},
        "crm/": {"Ref": "CrmRetentionDays"},
        "seen/": 40,  # skip lists: read for at most 30 days (LedgerMissTtlDays' maximum)
    }
    assert template["Parameters"]["LedgerMissTtlDays"]["MaxValue"] == 30
    assert template["Parameters"]["UploadRetentionDays"]["Default"] == 90
    # the user's mapping files, and the mirror (it replaces its own generations), never expire
    assert not any(p.startswith(("config/", "mirror/")) for p in expiring)


def _written_prefixes(function: dict) -> set[str]:
    out = set()
    for statement in function["Properties"]["Policies"][0]["Statement"]:
        if not isinstance(statement, dict) or "Sid" not in statement:
            continue
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if "s3:PutObject" in actions:
            for resource in statement["Resource"]:
                out.add(resource["Fn::Sub"].split("}/", 1)[1])
    return out


def test_each_function_writes_only_its_own_prefixes(template: dict) -> None:
    parse = template["Resources"]["ParseFeedFunction"]
    enrich = template["Resources"]["EnrichUploadFunction"]
    assert _written_prefixes(parse) == {"results/*", "deliveries/*", "todo/*"}
    written = _written_prefixes(enrich)
    assert written == {"reports/*", "uploads/*", "enriched/*", "dry-run/*", "runs/*", "mirror/*",
                       "feeds/*", "todo/*"}  # fmt: skip
    assert not any(p.startswith(("config/", "crm/")) for p in written)
    text = (ROOT / "template.yaml").read_text()
    assert "SQSSendMessagePolicy" not in text


def test_adobe_may_only_put_objects_under_the_feed_prefix(template: dict) -> None:
    role = template["Resources"]["AdobeDeliveryRole"]
    assert role["Condition"] == "CreateAdobeDeliveryRole"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": {"Ref": "AdobeUserArn"}}
    statement = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"]["Fn::Sub"][0].endswith("/${FeedPrefix}*")
    assert "AdobeDeliveryRoleArn" in template["Outputs"]


def test_secrets_survive_a_stack_deletion(template: dict) -> None:
    for name in ("AdobeCredentialsSecret", "MarketoCredentialsSecret"):
        secret = template["Resources"][name]
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
        assert "KmsKeyId" in secret["Properties"]


def test_first_deploy_parameters_are_validated_by_cloudformation(template: dict) -> None:
    params = template["Parameters"]
    marketo = re.compile(params["MarketoBaseUrl"]["AllowedPattern"])
    assert marketo.fullmatch("https://123-ABC-456.mktorest.com/rest")
    assert marketo.fullmatch("")
    assert not marketo.fullmatch("http://123-ABC-456.mktorest.com")
    ids = re.compile(params["DataSourceIds"]["AllowedPattern"])
    assert ids.fullmatch("acmeprod=101,acmedev=102") and not ids.fullmatch("acmeprod:101")
    assert re.compile(params["Destinations"]["AllowedPattern"]).fullmatch("datasources,bdia")
    assert not re.compile(params["Destinations"]["AllowedPattern"]).fullmatch("datasources14")


def test_finding_10_an_alarm_can_publish_to_the_alert_topic_in_the_default_deploy(
    transformed: dict,
) -> None:
    """CloudWatch cannot use the AWS managed key alias/aws/sns: without KmsKeyArn the topic
    is encrypted with a key of the stack's own whose policy lets CloudWatch (and EventBridge)
    encrypt; with KmsKeyArn, that key."""
    topic = transformed["Resources"]["AlertTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {
        "Fn::If": ["UseKms", {"Ref": "KmsKeyArn"}, {"Ref": "AlertKey"}]
    }
    key = transformed["Resources"]["AlertKey"]
    assert key["Condition"] == "OwnAlertKey"
    granted = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "cloudwatch.amazonaws.com" in s.get("Principal", {}).get("Service", [])
    ]
    assert granted and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(granted[0]["Action"])
    # no EventBridge rule publishes to the topic: no grant for it (issue 28)
    assert "events.amazonaws.com" not in str(key["Properties"]["KeyPolicy"])
    policy = transformed["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"]
    assert policy["Statement"][0]["Principal"]["Service"] == "cloudwatch.amazonaws.com"


def test_finding_10_the_schedule_may_write_its_dead_letters_under_kms_key_arn(
    transformed: dict,
) -> None:
    schedules = resources(transformed, "AWS::Scheduler::Schedule")
    (schedule,) = schedules.values()
    target = schedule["Properties"]["Target"]
    assert target["RoleArn"] == {"Fn::GetAtt": ["DailyScheduleRole", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EnrichFailuresQueue", "Arn"]}
    role = transformed["Resources"]["DailyScheduleRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    kms = [s for s in statements if isinstance(s, dict) and "Fn::If" in s]
    assert kms and kms[0]["Fn::If"][0] == "UseKms"
    assert set(kms[0]["Fn::If"][1]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert any(s.get("Action") == "sqs:SendMessage" for s in statements if "Action" in s)
