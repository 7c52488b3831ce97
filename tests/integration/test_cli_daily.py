"""run-daily, marketo lookup and build-upload through ``feedsync.cli.main``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from feedsync.adobe.datasource_file import problems
from feedsync.cli import main
from sandbox.run import Sandbox
from sandbox.world import MAPPING, World
from tests.integration.test_enrich_handler import DAY1, KEY1, _delivery


def test_run_daily_dry_run_then_for_real(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    record = _delivery(world)
    leads = world.add_leads(world.pending(record)[::10])
    assert main(["run-daily", "--date", DAY1, "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["deliveries"][0]["matched"] == len(leads) and world.box.adobe.datasource_jobs == {}
    assert dry["dry_run"] is True
    assert main(["run-daily", "--date", DAY1, "--dry-run"]) == 0
    out = capsys.readouterr().out  # finding 7: a dry run reads as one
    assert out.startswith(f"dry run: {KEY1}: complete") and "nothing sent" in out
    assert f"would send {len(leads)}" in out and "rows sent" not in out
    assert main(["run-daily"]) == 0
    out = capsys.readouterr().out
    assert f"{KEY1}: complete" in out and f"at Adobe {len(leads)}" in out
    assert f"Adobe: {len(leads)} awaiting Adobe's verdict" in out
    assert len(world.uploaded_rows()) == len(leads)
    assert main(["run-daily", "--delivery", "adobe/acmeprod/nope_2026-01-01"]) == 2
    assert "no delivery record" in capsys.readouterr().err


def test_run_daily_reports_quota_exhaustion_with_exit_1(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _delivery(world)
    world.add_leads(world.pending(record)[::10])
    world.box.marketo.daily_quota = 1
    assert main(["run-daily"]) == 1
    assert "quota_exhausted" in capsys.readouterr().out


def test_run_daily_without_settings_exits_2_naming_them(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_BUCKET")
    assert main(["run-daily"]) == 2
    assert "STATE_BUCKET is not set" in capsys.readouterr().err


def test_marketo_lookup_prints_json_lines(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    sandbox.marketo.add_lead("0" * 38, Account_Type__c="Customer")
    code = main(
        [
            "marketo",
            "lookup",
            "--field",
            "Adobe_Visitor_ID",
            "--fields",
            "id,Account_Type__c",
            "0" * 38,
            "1" * 38,
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["Account_Type__c"] for line in lines] == ["Customer"]
    monkeypatch.setattr("sys.stdin", io.StringIO("0" * 38 + "\n"))
    assert main(["marketo", "lookup", "--field", "Adobe_Visitor_ID"]) == 0
    assert json.loads(capsys.readouterr().out)["Adobe_Visitor_ID"] == "0" * 38
    monkeypatch.setenv("MARKETO_CLIENT_SECRET", "marketo-bad-secret-xyz")
    from tests.conftest import KNOWN_SECRETS

    KNOWN_SECRETS.add("marketo-bad-secret-xyz")
    assert main(["marketo", "lookup", "--field", "Adobe_Visitor_ID", "1"]) == 1
    assert "Bad client credentials" in capsys.readouterr().err


def test_build_upload_from_local_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    visitors = [f"{n:038d}" for n in range(5)]
    pending = [*visitors, "poison;id"]  # a row the data source file rules refuse
    (tmp_path / "pending.txt").write_text("\n".join(pending) + "\n")
    crm = [
        {
            "id": 11,
            "Adobe_Visitor_ID": visitors[0],
            "Account_Type__c": "Customer; VIP",
            "Industry": "Retail",
        },
        {
            "id": 12,
            "Adobe_Visitor_ID": visitors[2],
            "Account_Type__c": "Partner\tEMEA",
            "Industry": None,
        },
        {"id": 13, "Adobe_Visitor_ID": visitors[3], "Account_Type__c": {"odd": 1}},
        {"id": 14, "Adobe_Visitor_ID": "not-pending", "Account_Type__c": "x"},
        {"id": 15, "Adobe_Visitor_ID": "poison;id", "Account_Type__c": "x"},
    ]
    (tmp_path / "crm.jsonl").write_text("\n".join(json.dumps(r) for r in crm) + "\n")
    (tmp_path / "mapping.json").write_text(json.dumps(MAPPING))
    out = tmp_path / "upload.txt"
    code = main(
        [
            "build-upload",
            "--pending",
            str(tmp_path / "pending.txt"),
            "--crm",
            str(tmp_path / "crm.jsonl"),
            "--mapping",
            str(tmp_path / "mapping.json"),
            "--date",
            "2026-11-20",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 2 and result["rejected"] == [
        {"visitor": visitors[3], "reason": "Account_Type__c: a dict is not a column value"},
        {"visitor": "poison;id", "reason": "transactionID value holds ';'"},
    ]
    assert result["matched"] == 4  # CRM records of pending visitors (finding 14: was 5)
    data = out.read_bytes()
    assert problems(data) == []
    lines = data.decode().splitlines()
    assert lines[1] == "Date\ttransactionID\tEvent 51\tEvar 22\tEvar 23\tEvar 24"
    assert lines[2:] == [
        f"11/20/2026/12/00/00\t{visitors[0]}\t1\t11\tCustomer VIP\tRetail",
        f"11/20/2026/12/00/00\t{visitors[2]}\t1\t12\tPartner EMEA\t",
    ]


def test_build_upload_refuses_bad_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.txt").write_text("1\n")
    (tmp_path / "crm.jsonl").write_text("{not json\n")
    (tmp_path / "m.json").write_text(json.dumps(MAPPING))
    base = [
        "build-upload",
        "--pending",
        str(tmp_path / "p.txt"),
        "--mapping",
        str(tmp_path / "m.json"),
        "--out",
        str(tmp_path / "o.txt"),
    ]
    assert main([*base, "--crm", str(tmp_path / "crm.jsonl"), "--date", "2026-11-20"]) == 2
    assert "line 1 is not JSON" in capsys.readouterr().err
    assert main([*base, "--crm", str(tmp_path / "crm.jsonl"), "--date", "20-11-2026"]) == 2
    assert "expected YYYY-MM-DD" in capsys.readouterr().err
    assert main([*base, "--crm", str(tmp_path / "missing.jsonl"), "--date", "2026-11-20"]) == 2
    assert "No such file" in capsys.readouterr().err
