"""The Adobe operator commands, run through ``feedsync.cli.main`` against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedsync.adobe import bdia, target
from feedsync.cli import main
from sandbox.run import Sandbox
from tests.integration.test_adobe_clients import BDIA_COLUMNS, GOOD_FILE, _bdia_rows


@pytest.fixture
def cli_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in list(__import__("os").environ):
        if name.startswith("ADOBE_"):
            monkeypatch.delenv(name)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_whoami_prints_companies_and_expiry_never_the_token(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "adobe", "whoami", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["companies"] == [
        {
            "globalCompanyId": "acmeco0",
            "companyName": "Acme Co",
            "imsOrgId": cli_env.adobe.account.org_id,
        }
    ]
    assert body["token_expires_at"].startswith("20")
    assert not any(token in out for token in cli_env.adobe.tokens.issued)
    code, out, _ = _run(capsys, "adobe", "whoami")
    assert "company acmeco0: Acme Co" in out


def test_whoami_with_bad_secret_exits_1_with_adobes_code(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADOBE_CLIENT_SECRET", "p8e-wrong-secret-value-123456")
    code, out, err = _run(capsys, "adobe", "whoami")
    assert code == 1 and out == ""
    assert "invalid_client" in err and "p8e-wrong" not in err


def test_missing_credentials_exit_2_naming_the_setting(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADOBE_ORG_ID")
    code, _, err = _run(capsys, "adobe", "whoami")
    assert code == 2 and "lack org_id" in err


def test_datasources_accounts_upload_wait_and_jobs(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(capsys, "datasources", "accounts", "acmeprod", "--json")
    assert code == 0 and json.loads(out)[0]["data_source_id"] == 101
    assert "ftp_password" not in out
    upload = tmp_path / "acmeprod_2015-07-13.txt"
    upload.write_bytes(GOOD_FILE)
    code, out, _ = _run(
        capsys,
        "datasources",
        "upload",
        "acmeprod",
        "101",
        str(upload),
        "--wait",
        "--poll",
        "0.01",
        "--json",
    )
    assert code == 0 and json.loads(out)["status"] == "success"
    code, out, _ = _run(capsys, "datasources", "jobs", "acmeprod", "101", "--status", "success")
    assert code == 0 and "acmeprod_2015-07-13.txt" in out


def test_datasources_upload_refuses_a_bad_file_before_sending(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Date\ttransactionID\tEvent 51\teVar22\n13/07/2015\tx\t1\tL-1\n")
    code, _, err = _run(capsys, "datasources", "upload", "acmeprod", "101", str(bad))
    assert code == 1
    assert "needs the space: Evar 22" in err and "is not MM/DD/YYYY" in err
    assert not cli_env.server.requests_to("POST", r"/datasources/job/")


def test_bdia_validate_and_upload_twice_sends_once(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_env.adobe.bdia_group_interval = 0.0
    path = tmp_path / "hits.csv.gz"
    path.write_bytes(bdia.write_files(BDIA_COLUMNS, _bdia_rows(5))[0])
    code, out, _ = _run(capsys, "bdia", "validate", str(path), "--json")
    assert code == 0 and json.loads(out)["adobe"] == {"success": "File is valid"}
    for _ in range(2):
        code, out, _ = _run(capsys, "bdia", "upload", str(path), "--visitor-group", "g1", "--json")
        assert code == 0
    assert len(cli_env.adobe.bdia_ingested) == 1
    junk = tmp_path / "junk.csv.gz"
    junk.write_bytes(b"not gzip")
    code, out, _ = _run(capsys, "bdia", "validate", str(junk), "--local")
    assert code == 1 and "not a gzip file" in out


def test_target_batch_status(cli_env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.adobe_helpers import session_for

    client = target.TargetClient(session_for(cli_env), "acme", "acme")
    url = client.batch_update(target.write_batches(["a"], [("L-1", {"a": "1"})])[0])
    code, out, _ = _run(capsys, "target", "batch-status", url, "--wait", "--poll", "0.01", "--json")
    assert code == 0 and json.loads(out)["status"] == "complete"
    code, _, err = _run(capsys, "target", "batch-status", "https://example.com/nope")
    assert code != 0 and "batchStatus URL" in err


def test_batch_status_exit_codes_follow_targets_three_states(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.adobe_helpers import session_for

    client = target.TargetClient(session_for(cli_env), "acme", "acme")
    cli_env.adobe.stick_next = 1
    stuck = client.batch_update(target.write_batches(["a"], [("L-1", {"a": "1"})])[0])
    code, out, _ = _run(capsys, "target", "batch-status", stuck, "--wait", "--poll", "0.01")
    assert code == 1 and "stuck" in out and stuck in out  # reported with the batch URL
    slow = client.batch_update(target.write_batches(["a"], [("L-2", {"a": "1"})])[0])
    code, _, err = _run(capsys, "target", "batch-status", slow, "--wait", "--timeout", "0.001")
    assert code == 1 and "still incomplete" in err  # the timeout ran out
    code, out, _ = _run(capsys, "target", "batch-status", slow, "--json")
    body = json.loads(out)
    assert code == 0 and body["state"] == "complete"
    assert body["successfulUpdates"] == 1 and body["failedUpdates"] == 0  # showDetails
    code, _, err = _run(capsys, "target", "batch-status", slow, "--wait", "--timeout", "-1")
    assert code == 2 and "more than 0 seconds" in err


def test_bulk_update_encodes_splits_and_waits(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "profiles.csv"
    source.write_text('thirdPartyId,Tier,Note\nL-1,gold,"a&b=c+d 100%"\nL-2,silver,\n')
    code, out, err = _run(
        capsys, "target", "bulk-update", str(source), "--wait", "--poll", "0.01", "--json"
    )
    assert code == 0 and [b["state"] for b in json.loads(out)] == ["complete"]
    assert "batchStatus" in err  # each batch's status URL is printed as it is sent
    assert cli_env.adobe.profiles["L-1"] == {"Tier": "gold", "Note": "a&b=c+d 100%"}
    sent = cli_env.server.requests_to("POST", r"/v2/profile/batchUpdate$")[-1].body
    assert b"a%26b%3Dc%2Bd%20100%25" in sent  # the guide's reserved characters encoded
    bad = tmp_path / "ecid.csv"
    bad.write_text("marketingCloudVisitorId,Tier\n123,gold\n")
    code, _, err = _run(capsys, "target", "bulk-update", str(bad))
    assert code == 2 and "thirdPartyId or pcId" in err


def test_a_ready_batch_file_is_split_at_the_row_limit(tmp_path: Path) -> None:
    rows = "".join(f"P-{n},v{n}\n" for n in range(12))
    files = target.batches_from_file(f"batch=pcId,attr\n{rows}".encode())
    assert len(files) == 1
    import feedsync.adobe.target as module

    limit = module.MAX_BATCH_ROWS
    module.MAX_BATCH_ROWS = 5
    try:
        split = target.batches_from_file(f"batch=pcId,attr\n{rows}".encode())
    finally:
        module.MAX_BATCH_ROWS = limit
    assert [f.count(b"\n") - 1 for f in split] == [5, 5, 2]
    assert all(f.startswith(b"batch=pcId,attr\n") for f in split)


def test_whoami_with_a_jwt_credential_warns_how_to_migrate(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    rsa_key_pair: tuple[str, str],
) -> None:
    private, public = rsa_key_pair
    cli_env.adobe.account.public_key_pem = public
    monkeypatch.setenv("ADOBE_AUTH", "jwt")
    monkeypatch.setenv("ADOBE_TECHNICAL_ACCOUNT_ID", cli_env.adobe.account.technical_account_id)
    monkeypatch.setenv("ADOBE_PRIVATE_KEY", private)
    code, _, err = _run(capsys, "adobe", "whoami")
    assert code == 0
    assert "end of life" in err and "OAuth Server-to-Server" in err
