"""The operator's truth (issue 28): every state named the same everywhere, no silent stop, the
installation's settings honoured by the CLI, a Ctrl-C that says what happened, and the
hardening a security review asked for - each through the CLI or the handler, as a person meets
it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from feedsync.cli import main
from sandbox import feedgen
from sandbox.world import FEED_BUCKET, FOLDER, World

DAY = "2026-11-20"
KEY = f"{FOLDER}acmeprod_{DAY}"
README = Path(__file__).resolve().parents[2] / "README.md"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _day(world: World, day: str = DAY, rsid: str = "acmeprod") -> dict:
    rng = random.Random(5)
    record = world.deliver([feedgen.random_hits(200, rng, 60)], day, rsid)
    world.add_leads(world.pending(record)[::3])
    return record


# -- 1. settings honoured: AWS_REGION, samconfig.toml's region ---------------------------------
def test_the_cli_honours_aws_region_and_the_region_deploy_stored(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    _day(world)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # as the error message says to set it
    code, out, err = run(capsys, "status", "--days", "3650")
    assert code == 0 and "no AWS region" not in err and DAY in out, err
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the CLI set it: a new process
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "feedsync"\n'
        'region = "us-east-1"\n'
    )
    code, out, err = run(capsys, "status", "--days", "3650")
    assert code == 0 and DAY in out, err  # the region `deploy --guided` stored


# -- 2. nothing stops silently: an allow-list that names no delivery ----------------------------
def test_a_report_suites_typo_is_said_on_stderr_in_status_in_check_and_alarmed(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(world)
    monkeypatch.setenv("REPORT_SUITES", "acmeprd")
    code, out, err = run(capsys, "run-daily")
    assert code == 2, (out, err)
    assert "REPORT_SUITES=acmeprd names none of the 1 deliveries with work" in err
    assert "acmeprod" in err and "spelling" in err and "nothing enriched" in out
    code, out, err = run(capsys, "status", "--days", "3650")
    assert code == 1 and "ignored: acmeprod is not in REPORT_SUITES (acmeprd)" in out
    assert "leaves out 1 deliveries" in err
    from feedsync.checks import check_report_suites

    with pytest.raises(Exception, match="names none of the suites with deliveries here"):
        check_report_suites({})
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((README.parent / "template.yaml").read_text(), Loader=Loader)
    alarm = template["Resources"]["DeliveriesIgnoredAlarm"]["Properties"]
    assert alarm["MetricName"] == "DeliveriesIgnored" and alarm["Threshold"] == 0
    # the spelling fixed: the same delivery is enriched
    monkeypatch.setenv("REPORT_SUITES", "acmeprod")
    code, out, err = run(capsys, "run-daily")
    assert code == 0 and "acmeprod" in out and "REPORT_SUITES" not in err


# -- 3. parse s3:// reads the installation's parse settings; a flag never downgrades ------------
def test_parse_s3_uses_the_installations_columns_and_never_downgrades_a_verified_day(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    world.deliver_to_bucket([feedgen.random_hits(120, rng, 40)], DAY)
    uri = f"s3://{FEED_BUCKET}/{KEY}.txt"
    monkeypatch.setenv("VISITOR_COLUMNS", "post_visid_high,post_visid_low")
    code, out, err = run(capsys, "parse", uri)
    assert code == 0, err
    record = json.loads(world.state.get(f"deliveries/{KEY}.json") or b"{}")
    assert record["visitor_columns"] == ["post_visid_high", "post_visid_low"]
    assert record["status"] == "complete"
    code, out, err = run(capsys, "parse", uri, "--visitor-column", "mcvisd")  # a typo
    assert code == 2 and "mcvisd" in err and "nothing was written" in err, err
    assert "overrides VISITOR_COLUMNS=post_visid_high,post_visid_low" in err
    after = json.loads(world.state.get(f"deliveries/{KEY}.json") or b"{}")
    assert after["status"] == "complete" and after == record  # untouched
    world.invoke({})  # enriched with the installation's columns
    code, out, err = run(capsys, "parse", uri, "--visitor-column", "mcvisid")
    assert code == 2 and "re-keys its visitors" in err and "--force" in err
    code, out, err = run(capsys, "parse", uri, "--visitor-column", "mcvisid", "--force")
    assert code == 0, err
    assert json.loads(world.state.get(f"deliveries/{KEY}.json") or b"{}")["visitor_columns"] == [
        "mcvisid"
    ]
    code, out, _ = run(capsys, "parse", uri, "--json", "--force")
    assert code == 0 and json.loads(out)["complete"] is True


# -- 4. one vocabulary -----------------------------------------------------------------------
def test_one_vocabulary_of_states_in_status_the_report_the_page_and_the_readme(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from feedsync.views.states import STATES, readme_table

    assert readme_table() in README.read_text(), "README's 'Delivery states' table is stale"
    _day(world)
    code, out, _ = run(capsys, "status", "--days", "3650", "--json")
    (row,) = json.loads(out)["deliveries"]
    assert code == 0 and row["state"] == "waiting for the daily run"  # verified, never "complete"
    assert "feedsync run-daily --delivery" in row["next_step"]
    world.invoke({})
    world.invoke({})  # Adobe looks at the file, has not decided yet
    _, out, _ = run(capsys, "status", "--days", "3650", "--json")
    (row,) = json.loads(out)["deliveries"]
    report = world.report(KEY)  # walked and sent: "uploaded" is final only with the verdict
    assert row["state"] == report["state"] == "waiting for Adobe", (row, report["status"])
    assert report["adobe"]["visitors_awaiting_verdict"] > 0
    world.invoke({})  # Adobe's verdict
    _, out, _ = run(capsys, "status", "--days", "3650", "--json")
    (row,) = json.loads(out)["deliveries"]
    report = world.report(KEY)
    assert row["state"] == report["state"] == "enriched", (row, report["status"])
    page = (world.state.get(f"reports/{KEY}.html") or b"").decode()
    assert "State: <b class=ok>enriched (" in page and "done" not in page.split("State:")[1][:80]
    index = (world.state.get("reports/index.html") or b"").decode()
    assert all(s.name in index for s in STATES)  # the page's legend is the same table


# -- 6. Ctrl-C --------------------------------------------------------------------------------
def test_ctrl_c_in_run_daily_is_one_line_exit_130_and_the_report_says_interrupted(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(world)
    from feedsync.daily.delivery import DeliveryRun

    real = DeliveryRun.work

    def interrupted(self: DeliveryRun, lock: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(DeliveryRun, "work", interrupted)
    code, out, err = run(capsys, "run-daily")
    assert code == 130
    assert err.strip().splitlines() == [
        "feedsync: interrupted; nothing lost; run it again to resume"
    ]
    report = world.report(KEY)
    assert report["status"] == "interrupted" and report["state"] == "interrupted"
    assert "Run it again" in " ".join(report["next_steps"])
    code, out, _ = run(capsys, "status", "--days", "3650")
    assert "interrupted" in out and "run failed" not in out
    monkeypatch.setattr(DeliveryRun, "work", real)
    code, out, err = run(capsys, "run-daily")
    assert code == 0 and world.report(KEY)["status"] in ("complete", "waiting"), out


# -- 7. output cut short by the reader ---------------------------------------------------------
def test_a_reader_that_stops_early_is_not_an_error(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`feedsync status --json | head -2`: stdout's reader goes away; no traceback, exit 0."""
    _day(world)
    import sys

    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise ValueError("not a real descriptor")

    monkeypatch.setattr(sys, "stdout", Closed())
    code = main(["status", "--days", "3650", "--json"])
    monkeypatch.undo()
    _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err and "unexpected" not in err


# -- 8. hardening -----------------------------------------------------------------------------
def test_a_refused_endpoint_url_never_shows_its_password(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(world)
    monkeypatch.setenv("MARKETO_BASE_URL", "http://user:hunter2-secret@mkto.example.com")
    code, out, err = run(capsys, "run-daily")
    assert code == 2 and "hunter2" not in out + err and "***@mkto.example.com" in err
    monkeypatch.setenv("MARKETO_BASE_URL", "https://user:hunter2-secret@mkto.example.com")
    code, out, err = run(capsys, "run-daily")
    assert code == 2 and "hunter2" not in out + err and "no user name or password" in err


def test_a_folder_named_like_a_script_stays_a_path_on_the_status_page(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from feedsync.views.status_html import relative

    link = relative("reports/index.html")
    assert (
        link("reports/javascript:alert(1)/x_2026-11-20")
        == "./javascript:alert(1)/x_2026-11-20.html"
    )
    assert link("reports/adobe/acmeprod/acmeprod_2026-11-20").startswith("./adobe/")


def test_crm_values_a_spreadsheet_would_run_reach_the_upload_copies_escaped(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = world.deliver([feedgen.random_hits(30, random.Random(2), 10)], DAY)
    pending = world.pending(record)
    leads = world.add_leads(pending[:3])
    formulas = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "-12.5"]
    for lead, value in zip(leads.values(), formulas, strict=True):
        lead["Industry"] = value
    world.invoke({})
    copies = [k for k in world.state.list(f"uploads/{KEY}/datasources/") if k.endswith(".txt")]
    text = b"".join(world.state.get(k) or b"" for k in copies).decode()
    assert "\t'=HYPERLINK" in text and "\t'+cmd" in text
    assert "\t-12.5" in text  # a number stays a number


# -- 7. what a person types: a calendar date, the bare delivery id, a dry run said as one ------
def test_a_date_the_calendar_lacks_a_bare_delivery_id_and_a_dry_run_in_the_run_list(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _day(world)
    code, out, err = run(capsys, "run-daily", "--date", "2026-02-30")
    assert code == 2 and "February 2026 has 28 days, not 30" in err, err
    code, out, err = run(capsys, "run-daily", "--date", "2026-13-01")
    assert code == 2 and "there is no month 13" in err, err
    # the id parse, reports and `feeds resend` print, without the folder
    code, out, err = run(capsys, "run-daily", "--dry-run", "--delivery", f"acmeprod_{DAY}")
    assert code == 0, err
    code, out, err = run(capsys, "status", "--days", "3650", "--runs", "3")
    assert code == 0 and "DRY RUN: " in out, out  # a dry run never reads as a delivery
    code, out, err = run(capsys, "runs", "show", f"acmeprod_{DAY}")
    assert code == 0 and KEY in out, (out, err)
    code, out, err = run(capsys, "runs", "show", "acmeprod_2026-11-21")
    assert code == 2 and "acmeprod_2026-11-21" in err and "feedsync status" in err, err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "run-daily", "--delivery", f"acmeprod_{DAY}")
    assert code == 0, err
    code, out, err = run(capsys, "status", "--days", "3650")
    assert code == 0 and f"acmeprod_{DAY}" in out and "DRY RUN" not in out.split("runs")[0]
    # the run that sent the files: waiting for Adobe's verdict, not "enriched"
    last = out.split("last runs:")[1].strip().splitlines()[0]
    assert "1 waiting for Adobe" in last and "enriched" not in last, out


def test_the_readmes_notification_recipe_keeps_what_is_there_and_copes_with_nothing(
    tmp_path: Path,
) -> None:
    import re
    import shlex
    import subprocess
    import sys

    line = next(ln for ln in README.read_text().splitlines()
                if ln.startswith("python3 -c") and "EventBridgeConfiguration" in ln)  # fmt: skip
    argv = shlex.split(line)
    argv[0] = sys.executable
    queue = {"QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:1:q",
                                      "Events": ["s3:ObjectCreated:*"]}]}  # fmt: skip
    # what `get-bucket-notification-configuration` prints: nothing (no configuration), {} or one
    for before, after in (("", {}), ("{}\n", {}), (json.dumps(queue), queue)):
        (tmp_path / "notifications.json").write_text(before)
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True)
        got = json.loads((tmp_path / "notifications.json").read_text())
        assert got == {**after, "EventBridgeConfiguration": {}}
    assert re.search(r"put-bucket-notification-configuration .*file://notifications\.json",
                     README.read_text())  # fmt: skip


def test_break_lock_takes_over_at_once_from_a_killed_cli_run_and_says_when_otherwise(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    from feedsync.aws.runstate import DynamoRunState
    from feedsync.daily.lock import cli_owner
    from feedsync.state.layout import StateLayout

    _day(world)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a CLI run of this machine that was killed: its process no longer exists
    owner = cli_owner().rsplit("-", 1)[0] + f"-{gone.pid}"
    runs = DynamoRunState(world.table)
    assert runs.acquire(StateLayout.run(KEY, None), owner, 600)  # its lease runs 10 minutes
    code, out, err = run(capsys, "run-daily")
    assert code == 1 and "another invocation is enriching this delivery" in out + err
    code, out, err = run(capsys, "run-daily", "--break-lock")
    assert code == 0 and f"{KEY}: complete" in out, (out, err)
    # a holder elsewhere (a Lambda invocation) that renewed a moment ago is left, with the wait
    runs.acquire(StateLayout.run(KEY, None), "inv-elsewhere", 600, force=True)
    code, out, err = run(capsys, "run-daily", "--delivery", KEY, "--break-lock")
    assert code == 1 and "--break-lock leaves it" in out + err
    assert "--break-lock takes over in" in out + err


def test_a_suite_without_a_data_source_account_is_not_configured_never_enriched(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _day(world)
    world.env.pop("DATA_SOURCE_ID", None)
    world.env["DATA_SOURCE_IDS"] = "othersuite=102"  # names another suite only
    monkeypatch.delenv("DATA_SOURCE_ID", raising=False)
    for _ in range(2):
        summary = world.invoke({})
        assert [d["status"] for d in summary["deliveries"]] == ["not_configured"]
    _, out, _ = run(capsys, "status", "--days", "3650")
    line = next(ln for ln in out.splitlines() if ln.startswith(DAY))
    assert "not configured: report suite acmeprod has no data source account" in line
    assert "enriched" not in line.split("not configured")[0]
    assert world.report(KEY)["state"] != "enriched"
