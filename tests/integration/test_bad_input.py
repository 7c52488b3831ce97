"""Every subcommand, given bad input, ends in one line naming what to fix and exit 1 (runtime)
or 2 (usage or configuration) - never a traceback, never a secret; -v adds the traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from feedsync.cli import _subparsers, build_parser, main

SETTINGS = (
    "STATE_BUCKET", "STATE_TABLE", "ADOBE_CLIENT_ID", "ADOBE_CLIENT_SECRET", "ADOBE_ORG_ID",
    "ADOBE_SECRET_ARN", "ADOBE_CREDENTIALS_FILE", "MARKETO_BASE_URL", "MARKETO_CLIENT_ID",
    "MARKETO_CLIENT_SECRET", "MARKETO_SECRET_ARN", "DATA_SOURCE_ID", "AWS_ENDPOINT_URL",
    "BACKFILL_STATE_MACHINE_ARN", "FEEDSYNC_STACK", "DATA_FEED_IDS", "MAPPING_FILE",
)  # fmt: skip


def _cases(tmp: Path) -> list[tuple[list[str], int, str]]:
    empty = tmp / "empty.txt"
    empty.write_text("")
    folder = tmp / "folder"
    folder.mkdir(exist_ok=True)
    return [
        (["parse", str(tmp / "nope")], 2, "no such delivery folder or manifest"),
        (["adobe", "whoami"], 2, "Adobe credentials lack client_id"),
        (["datasources", "accounts", "rs"], 2, "Adobe credentials lack client_id"),
        (["datasources", "upload", "rs", "101", str(tmp / "none.txt")], 2, "none.txt"),
        (["datasources", "jobs", "rs", "101"], 2, "Adobe credentials lack client_id"),
        (["bdia", "validate", str(tmp / "none.csv.gz")], 2, "none.csv.gz"),
        (["bdia", "upload", str(tmp / "none.csv.gz"), "--visitor-group", "g"], 2, "none.csv.gz"),
        (["target", "batch-status", "https://x.tt.omtrdc.net/m2/x/v2/profile/batchStatus?batchId=1"],
         2, "Adobe credentials lack client_id"),
        (["target", "bulk-update", str(tmp / "none.txt")], 2, "none.txt"),
        (["local", "put", str(tmp / "nope"), "s3://bucket-x/p/"], 2, "nope"),
        (["local", "put", str(folder), "s3://bucket-x/p/"], 2, "export the lines"),
        (["run-daily", "--date", "2026-11-31"], 2, "November 2026 has 30 days, not 31"),
        (["run-daily"], 2, "is not set"),
        (["run-daily", "--date", "2026-13-01"], 2, "2026-13-01"),
        (["reconcile"], 2, "is not set"),
        (["marketo", "lookup", "--field", "f", "1"], 2, "MARKETO_BASE_URL"),
        (["build-upload", "--pending", str(empty), "--crm", str(tmp / "none.csv"), "--mapping",
          str(tmp / "m.json"), "--date", "2026-11-20", "--out", str(folder)], 2, "folder"),
        (["status"], 2, "STATE_BUCKET"),
        (["runs", "show", "adobe/x/x_2026-11-20"], 2, "STATE_BUCKET"),
        (["forget", "adobe/x/x_2026-11-20", "--yes"], 2, "STATE_BUCKET"),
        (["retry", "adobe/x/x_2026-11-20", "--rejected"], 2, "STATE_BUCKET"),
        (["runs", "rebuild", "adobe/x/x_2026-11-20"], 2, "STATE_BUCKET"),
        (["backfill", "not-a-uri"], 2, "s3://"),
        (["deploy", "--config", str(tmp / "none.toml")], 2, "feedsync deploy --guided"),
        (["adobe", "delivery-role-arn"], 2, "Adobe credentials lack client_id"),
        (["feeds", "status"], 2, "DATA_FEED_IDS is not set"),
        (["feeds", "resend", "not-a-day"], 2, "is not a delivery"),
        (["aep", "setup", "--mapping", str(tmp / "none.json")], 2, "none.json"),
        (["aep", "check", "--mapping", str(empty)], 2, "empty.txt"),
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_process_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new `feedsync` process: no handler an earlier test's Lambda handler module left
    on the package logger (its stream is a closed capture by now)."""
    import logging

    package = logging.getLogger("feedsync")
    monkeypatch.setattr(package, "handlers", [])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (*SETTINGS, "AWS_PROFILE", "AWS_REGION"):  # the CLI sets what it is given
        monkeypatch.setenv(name, "")  # recorded: teardown restores the original (or absence)
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return tmp_path


def test_every_subcommand_is_covered(clean_env: Path) -> None:
    leaves = {
        c.prog.removeprefix("feedsync ")
        for c in _subparsers(build_parser())
        if not any(a.dest.endswith("_command") for a in c._actions)
    }
    covered = {" ".join(a for a in argv[:2] if not a.startswith(("-", "/", "s3:", "n")))
               for argv, _, _ in _cases(clean_env)}  # fmt: skip
    covered = {c for c in covered if c in leaves} | {
        next(iter(argv)) for argv, _, _ in _cases(clean_env) if next(iter(argv)) in leaves
    }
    # `sandbox` and `local up` serve until stopped: their bad input (a busy port) is tested
    # in test_a_busy_port_is_one_line; `check` reports one line per check on stdout, each
    # failure naming what to fix (tests/integration/test_check.py)
    assert leaves - covered == {"sandbox", "local up", "check"}


def test_bad_input_is_one_line_with_a_documented_exit(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = []
    for argv, code, words in _cases(clean_env):
        got = main(argv)
        _, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        if got != code or words not in err or "Traceback" in err or len(lines) != 1:
            failures.append((argv, got, err))
        got_json = main([*argv, "--output", "json"]) if "--date" not in argv else code
        _, err = capsys.readouterr()
        if got_json != code or "Traceback" in err:
            failures.append((argv, "json", got_json, err))
    assert not failures, failures


def test_a_profile_that_does_not_exist_is_named(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_BUCKET", "bucket-x")
    code = main(["status", "--profile", "no-such-profile-here"])
    err = capsys.readouterr().err
    assert code == 2 and "no AWS profile named 'no-such-profile-here'" in err
    assert "Traceback" not in err


def test_verbose_shows_the_traceback(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception, match="STATE_BUCKET"):
        main(["status", "-v"])


def test_a_busy_port_is_one_line(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["local", "up", "--port", str(port), "--dir", str(clean_env / "local")])
        err = capsys.readouterr().err
        assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err
        assert "choose another with --port PORT" in err and "Traceback" not in err
        code = main(["sandbox", "--port", str(port)])
        err = capsys.readouterr().err
        assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err
        assert "--port PORT" in err and "--aws-port" not in err


def test_a_wrong_secret_arn_names_the_secret_not_the_table(
    world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:feedsync/nope-AbCdEf"
    monkeypatch.setenv("ADOBE_SECRET_ARN", arn)
    code = main(["adobe", "whoami"])
    err = capsys.readouterr().err
    assert code == 2 and f"ADOBE_SECRET_ARN={arn}: no such secret" in err, err
    assert "MARKETO_SECRET_ARN" not in err and "AdobeCredentialsSecretArn" in err
    assert "STATE_TABLE" not in err and "Traceback" not in err
    monkeypatch.setenv("ADOBE_SECRET_ARN", world.env["ADOBE_SECRET_ARN"])
    monkeypatch.setenv("MARKETO_SECRET_ARN", arn.replace("nope", "gone"))
    code = main(["run-daily"])
    err = capsys.readouterr().err
    assert code == 2 and "MARKETO_SECRET_ARN=" in err and "ADOBE_SECRET_ARN" not in err, err


def test_wrong_adobe_credentials_in_run_daily_are_one_line(
    world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from tests.integration.test_enrich_handler import _delivery, _matched

    record = _delivery(world)
    _matched(world, world.pending(record), every=20)
    secret = {"CLIENT_ID": world.box.adobe.account.client_id, "CLIENT_SECRETS": ["wrong-s3cret"],
              "ORG_ID": world.box.adobe.account.org_id, "SCOPES": ["openid"]}  # fmt: skip
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=world.env["ADOBE_SECRET_ARN"], SecretString=json.dumps(secret)
    )
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    code = main(["run-daily"])
    err = capsys.readouterr().err
    assert code == 1 and "invalid_client" in err and "Traceback" not in err
    assert "wrong-s3cret" not in err
