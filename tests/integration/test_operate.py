"""Operating feedsync from the CLI: status and history read back a scripted history, common
mistakes end in one clear line and a documented exit status (never a traceback), --json errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from feedsync.cli import main
from sandbox import feedgen
from sandbox.world import FOLDER, World

DAYS = ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _history(world: World) -> None:
    """Four days: sent, awaiting Adobe's verdict; waiting for quota; failed verification; still
    parsing."""
    rng = random.Random(4)
    enriched = world.deliver([feedgen.random_hits(300, rng, 80)], DAYS[0])
    world.add_leads(world.pending(enriched)[::3])
    world.invoke({"date": DAYS[0]})
    quota = world.deliver([feedgen.random_hits(1500, rng, 700)], DAYS[1])
    world.add_leads(world.pending(quota)[::3])
    world.box.marketo.daily_quota = len(world.box.marketo.call_times) + 1
    world.invoke({"date": DAYS[1]})
    failed = world.deliver([feedgen.random_hits(100, rng, 30)], DAYS[2])
    failed.update(complete=False, status="failed", reasons=["01-x.tsv.gz: MD5-Digest check failed"])
    world.state.put(f"deliveries/{FOLDER}acmeprod_{DAYS[2]}.json", json.dumps(failed).encode())
    world.state.put(f"results/{FOLDER}acmeprod_{DAYS[3]}/01-acmeprod_{DAYS[3]}.tsv.gz.json", b"{}")


@pytest.fixture
def history(world: World, capsys: pytest.CaptureFixture[str]) -> World:
    _history(world)
    capsys.readouterr()  # the functions' own log lines
    return world


def test_status_shows_each_delivery_and_the_last_runs(
    history: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", "--days", "3650", "--json")
    found = json.loads(out)
    states = {d["day"]: d["state"] for d in found["deliveries"]}
    assert states == {
        DAYS[0]: "waiting for Adobe",  # walked and sent; "enriched" only with Adobe's verdict
        DAYS[1]: "waiting for quota",
        DAYS[2]: "failed verification: 01-x.tsv.gz: MD5-Digest check failed",
        DAYS[3]: "parsing",
    }
    first = next(d for d in found["deliveries"] if d["day"] == DAYS[0])
    assert first["uploads"].startswith("1 files") and first["rsid"] == "acmeprod"
    assert "awaiting verdict" in first["uploads"]
    assert len(found["runs"]) == 2 and found["runs"][0]["deliveries"] == {"quota_exhausted": 1}
    assert code == 1  # a failed delivery: the work needs a person
    code, out, _ = run(capsys, "status", "--days", "3650")
    assert "DAY" in out and "waiting for quota" in out and "last runs:" in out


def test_runs_show_makes_a_report_readable(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _history(world)
    key = f"{FOLDER}acmeprod_{DAYS[0]}"
    code, out, _ = run(capsys, "runs", "show", key)
    assert code == 0
    assert f"{key}: waiting for Adobe" in out and "walk:" in out and "files:" in out
    assert "datasources" in out and "awaiting Adobe's verdict" in out
    code, out, _ = run(capsys, "runs", "show", key, "--json")
    found = json.loads(out)
    assert found["report"]["status"] == "complete" and found["files"][0]["batch"] == 0
    assert found["walk"]["done"] is True
    assert world.state.exists(f"reports/{key}.html")  # the same report, for a browser
    html = (world.state.get(f"reports/{key}.html") or b"").decode()
    assert "<table>" in html and "Rows refused by a rule" in html and "job " in html


def test_no_region_is_one_line_exit_2(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.chdir(world.workdir)  # no samconfig.toml here either
    code, out, err = run(capsys, "run-daily", "--json")
    assert code == 2 and "no AWS region configured" in err and "Traceback" not in err
    assert json.loads(out) == {"error": err.strip().removeprefix("feedsync: "), "exit": 2}


def test_a_missing_bucket_or_table_is_named(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_BUCKET", "no-such-bucket-here")
    code, _, err = run(capsys, "status")
    assert code == 2 and "no such bucket no-such-bucket-here" in err
    _history(world)
    monkeypatch.setenv("STATE_BUCKET", world.state.bucket)
    monkeypatch.setenv("STATE_TABLE", "no-such-table")
    capsys.readouterr()
    code, _, err = run(capsys, "runs", "show", f"{FOLDER}acmeprod_{DAYS[0]}")
    assert code == 2 and "no such table no-such-table" in err


def test_an_unreachable_aws_endpoint_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("STATE_BUCKET", "bkt")
    code, _, err = run(capsys, "status")
    assert code == 1 and "cannot reach AWS at http://127.0.0.1:9" in err


@pytest.mark.parametrize("where", ["missing", "folder"])
def test_build_upload_out_into_a_missing_folder_or_onto_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "p.txt").write_text("v1\n")
    (tmp_path / "crm.jsonl").write_text('{"Adobe_Visitor_ID": "v1", "id": 1}\n')
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "visitor_id_field": "Adobe_Visitor_ID",
                "success_event": "Event 1",
                "columns": {"id": "Evar 1"},
            }
        )
    )
    out = tmp_path / "nope" / "f.txt" if where == "missing" else tmp_path
    code, _, err = run(
        capsys, "build-upload", "--pending", str(tmp_path / "p.txt"), "--crm",
        str(tmp_path / "crm.jsonl"), "--mapping", str(tmp_path / "m.json"), "--date",
        "2026-11-20", "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "--out" in err and "Traceback" not in err


def test_marketo_base_url_accepts_rest_and_refuses_plain_http() -> None:
    from feedsync.config import marketo_base_url
    from feedsync.errors import ConfigError

    assert (
        marketo_base_url("https://123-ABC-456.mktorest.com/rest")
        == "https://123-ABC-456.mktorest.com"
    )
    assert marketo_base_url("http://127.0.0.1:8765/rest/") == "http://127.0.0.1:8765"
    with pytest.raises(ConfigError, match="expected https://"):
        marketo_base_url("http://123-ABC-456.mktorest.com")


def test_bdia_upload_and_validate_agree_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    code_validate, _, _ = run(capsys, "bdia", "validate", str(bad), "--local")
    code_upload, _, err = run(capsys, "bdia", "upload", str(bad), "--visitor-group", "g")
    assert code_validate == code_upload == 1 and "not a gzip file" in err


def test_zero_or_negative_timeouts_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "datasources", "upload", "r", "1", "f.txt", "--wait", "--timeout", "0"
    )
    assert code == 2 and "more than 0 seconds" in err


def test_finding_11_a_typo_writes_nothing_and_a_failed_delivery_is_reported_once(
    history: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world = history
    world.s3.create_bucket(Bucket="feed-bucket-typo")
    before = sorted(world.state.list(""))
    code, _, err = run(capsys, "parse", f"s3://feed-bucket-typo/{FOLDER}acmeprod_2026-11-02.txt")
    assert code == 2 and "no such manifest" in err and "nothing was written" in err
    assert sorted(world.state.list("")) == before
    # the failed delivery of DAYS[2]: said once by a run, not by every run after it
    world.box.marketo.daily_quota = 50_000  # a new day at Marketo
    first = world.invoke({})
    skipped = [d for d in first["deliveries"] if d["status"] == "skipped"]
    assert [d["key"] for d in skipped] == [f"{FOLDER}acmeprod_{DAYS[2]}"]
    again = world.invoke({})
    assert not [d for d in again["deliveries"] if d["status"] == "skipped"]
    # an operator forgets it: status no longer fails on it
    key = f"{FOLDER}acmeprod_{DAYS[2]}"
    code, out, err = run(capsys, "forget", key)
    assert code == 2 and "--yes" in err  # not a terminal: no silent removal
    code, out, _ = run(capsys, "forget", key, "--yes")
    assert code == 0 and "forgotten" in out
    assert not world.state.exists(f"deliveries/{key}.json")
    code, out, _ = run(capsys, "status", "--days", "3650")
    assert DAYS[2] not in out
    code, _, err = run(capsys, "forget", key, "--yes")
    assert code == 2 and "nothing stored" in err


def test_the_status_page_puts_failures_first_and_links_every_report(
    history: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import datetime as dt

    world = history
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    world.deliver([feedgen.random_hits(50, random.Random(3), 20)], yesterday)
    world.box.marketo.daily_quota = 50_000
    world.invoke({"date": yesterday})
    kept = (world.state.get("reports/index.html") or b"").decode()  # kept by the daily run
    assert f'href="./adobe/acmeprod/acmeprod_{yesterday}.html"' in kept  # beside the reports
    world.invoke({"date": DAYS[0], "dry_run": True, "run_id": "20261203T060000"})
    out = tmp_path / "status.html"
    code, _, err = run(capsys, "status", "--days", "3650", "--html", str(out))
    assert code == 1 and "status page written" in err  # 1: a delivery failed verification
    page = out.read_text()
    failed, enriched = page.index(DAYS[2]), page.index(DAYS[0])
    assert failed < enriched  # what needs a person comes first
    assert "https://" in page and "Signature=" in page  # pre-signed links to the reports
    assert "stop working at" in page  # ... and when they stop working
    # every row's link works: to a report, or to the delivery's own section on the page
    # (failed verification, parsing: no report) with what it means and what to do next
    import re

    anchors = re.findall(r'href="#(d\d+)"', page)
    assert len(anchors) == 2 and all(f"<section id={a}>" in page for a in anchors)
    assert "failed verification" in page and "feedsync feeds resend" in page
    assert "DRY RUN 20261203T060000" in page and "would send" in page
    code, _, err = run(capsys, "status", "--days", "3650", "--open")
    assert "status page (valid 24 h): https://" in err


def test_the_cli_reads_a_stacks_outputs_and_settings(
    history: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--stack NAME` (or FEEDSYNC_STACK) instead of a dozen exports: the stack's outputs,
    and the daily function's own settings for run-daily."""
    import io
    import zipfile

    import boto3

    world = history
    from feedsync.cli.stack import OUTPUTS

    # the CLI fills the environment from the stack: let the test undo it
    for name in (*OUTPUTS.values(), "DATA_SOURCE_ID", "DESTINATIONS", "FEED_PREFIX"):
        monkeypatch.setenv(name, "")  # recorded: teardown restores the original (or absence)
        monkeypatch.delenv(name)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("enrich_upload.py", "def lambda_handler(event, context): pass\n")
    role = boto3.client("iam").create_role(
        RoleName="feedsync-enrich", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName="feedsync-enrich-upload", Runtime="python3.12", Role=role,
        Handler="enrich_upload.lambda_handler", Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"DATA_SOURCE_ID": "101", "DESTINATIONS": "datasources"}},
    )  # fmt: skip
    outputs = {"StateBucketName": world.env["STATE_BUCKET"],
               "StateTableName": world.env["STATE_TABLE"],
               "EnrichUploadFunctionName": "feedsync-enrich-upload"}  # fmt: skip
    template = {"Resources": {"Nothing": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}  # fmt: skip
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="feedsync-prod", TemplateBody=json.dumps(template)
    )
    code_, out, err = run(capsys, "status", "--days", "3650", "--stack", "feedsync-prod")
    assert f"acmeprod_{DAYS[0]}" in out, err
    monkeypatch.setenv("FEEDSYNC_STACK", "feedsync-prod")
    code_, out, err = run(capsys, "runs", "show", f"{FOLDER}acmeprod_{DAYS[0]}")
    assert code_ == 0 and "enriched" in out
    code_, _, err = run(capsys, "status", "--stack", "no-such-stack")
    assert code_ == 2 and "no such stack" in err
