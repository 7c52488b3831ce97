"""The ``aep`` destination through the EnrichUploadFunction handler, against moto and the
Experience Platform stand-in (sandbox/aep.py): batches, files, records, Adobe's verdicts, a
failed batch re-sent through the ledger, a lost create answer looked up, typed values."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from sandbox.run import Sandbox
from sandbox.world import MAPPING, World
from tests.faults.harness import _hits

DAY = "2026-11-20"
KEY = f"adobe/acmeprod/acmeprod_{DAY}"
FIELDS = {"_acme.crm.accountType": "string", "_acme.crm.industry": "string",
          "_acme.crm.crmId": "string"}  # fmt: skip


def _setup(world: World, sandbox: Sandbox, aep_fields: dict[str, Any] | None = None) -> str:
    dataset = sandbox.platform.add_dataset(FIELDS)
    fields = aep_fields or {
        "Account_Type__c": {"path": "_acme.crm.accountType"},
        "Industry": {"path": "_acme.crm.industry", "type": "string"},
        "id": "_acme.crm.crmId",
    }
    world.put_mapping({**MAPPING, "aep": {"dataset_id": dataset, "sandbox": "prod",
                                          "fields": fields}})  # fmt: skip
    world.env.update(DESTINATIONS="aep", ADOBE_SETTLE_SECONDS="0")
    return dataset


def _deliver(world: World, n: int = 400, every: int = 4) -> set[str]:
    rng = random.Random(9)
    record = world.deliver([_hits(rng, n // 2, 10), _hits(rng, n // 2, 11)], DAY)
    matched = world.pending(record)[::every]
    world.add_leads(matched)
    return set(matched)


def _ingested(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Records Platform ingested (what CJA would read)."""
    return sandbox.platform.ingested()


def _ecids(records: list[dict[str, Any]]) -> list[str]:
    return [r["identityMap"]["ECID"][0]["id"] for r in records]


def test_a_daily_run_to_aep_is_followed_to_adobes_verdict(world: World, sandbox: Sandbox) -> None:
    _setup(world, sandbox)
    matched = _deliver(world)
    world.invoke({})
    awaiting = world.report(KEY)["adobe"]["visitors_awaiting_verdict"]
    assert awaiting == len(matched)  # batches completed; Adobe has not decided yet
    for _ in range(3):  # staged -> processing -> success, read by reconciliation
        world.invoke({})
    report = world.report(KEY)
    records = _ingested(sandbox)
    assert sorted(_ecids(records)) == sorted(matched)  # every matched visitor exactly once
    assert report["status"] == "complete" and report["uploaded_rows"] == len(matched)
    assert report["adobe"]["visitors_awaiting_verdict"] == 0
    assert all(n == 1 for n in sandbox.platform.completes.values())  # completed once each
    sample = records[0]
    assert set(sample["_acme"]["crm"]) <= {"accountType", "industry", "crmId"}
    assert sample["identityMap"]["ECID"][0]["primary"] is True


def test_a_failed_batch_is_resent_through_the_ledger(world: World, sandbox: Sandbox) -> None:
    _setup(world, sandbox)
    matched = _deliver(world)
    sandbox.platform.fail_next = 1  # Adobe fails the first batch
    for _ in range(6):
        world.invoke({})
    statuses = [b["status"] for b in sandbox.platform.batches.values()]
    assert statuses.count("failed") == 1 and statuses.count("success") >= 1
    assert sorted(_ecids(_ingested(sandbox))) == sorted(matched)  # nobody lost, nobody twice
    report = world.report(KEY)
    assert report["status"] == "complete" and report["uploaded_rows"] == len(matched)


def test_a_lost_create_answer_is_looked_up_never_created_twice(
    world: World, sandbox: Sandbox
) -> None:
    _setup(world, sandbox)
    matched = _deliver(world)
    sandbox.server.inject("POST", r"/import/batches$", "lose-response")
    for _ in range(5):
        world.invoke({})
    external = [b["externalId"] for b in sandbox.platform.batches.values()]
    files = world.report(KEY)["jobs"]["aep"]  # the files the run sent, one batch each
    # one Platform batch per file: the lost one was looked up, never created again
    assert len(external) == len(set(external)) == len(files) == 2
    finds = sandbox.server.requests_to("GET", r"/catalog/batches$")
    assert len(finds) == 1 and finds[0].param("externalId") in external
    assert all(n == 1 for n in sandbox.platform.completes.values())
    assert sorted(_ecids(_ingested(sandbox))) == sorted(matched)
    assert world.report(KEY)["status"] == "complete"


def test_values_that_do_not_fit_the_schema_type_are_rejected_with_their_reason(
    world: World, sandbox: Sandbox
) -> None:
    number = {"path": "_acme.crm.industry", "type": "number"}
    _setup(world, sandbox, {"Account_Type__c": "_acme.crm.accountType", "Industry": number})
    _deliver(world)
    for _ in range(4):
        world.invoke({})
    report = world.report(KEY)
    assert report["rejected"] > 0
    assert any("is not a number" in reason for reason in report["rejected_reasons"])
    assert not any(r["_acme"]["crm"].get("industry") for r in _ingested(sandbox))


def test_aep_without_a_mapping_section_is_not_configured(world: World, sandbox: Sandbox) -> None:
    world.env.update(DESTINATIONS="aep")
    _deliver(world)
    result = world.invoke({})
    delivery = result["deliveries"][0]
    assert delivery["status"] in ("not_configured", "failed")
    assert "no 'aep' section" in str(delivery["error"])


@pytest.fixture(autouse=True)
def _fast(sandbox: Sandbox) -> None:
    sandbox.adobe.bdia_interval = 0.0


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from feedsync.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["profile", "lookup"])
def test_aep_setup_twice_changes_nothing_the_second_time_and_check_passes(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any, kind: str
) -> None:
    fields = {"Account_Type__c": "_acme.crm.accountType",
              "Annual_Revenue__c": {"path": "_acme.crm.revenue", "type": "number"},
              "Customer_Since__c": {"path": "_acme.crm.since", "type": "date"}}  # fmt: skip
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({**MAPPING, "aep": {"sandbox": "prod", "fields": fields}}))
    code, out, _ = _cli(capsys, "aep", "setup", "--class", kind, "--mapping", str(mapping),
                          "--json")  # fmt: skip
    first = json.loads(out)
    assert code == 0 and first["changed"] and first["dataset_id"] in sandbox.platform.datasets
    code, out, _ = _cli(capsys, "aep", "setup", "--class", kind, "--mapping", str(mapping))
    assert code == 0 and out.startswith("nothing changed"), out
    assert first["dataset_id"] in out
    assert len(sandbox.platform.datasets) == 1 and len(sandbox.platform.schemas) == 1

    aep = {"sandbox": "prod", "fields": fields, **first["mapping_aep"]}
    mapping.write_text(json.dumps({**MAPPING, "aep": aep}))
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 1 and "FAIL  CJA connection: no CJA connection includes" in out, out
    assert "ok    schema fields: " in out and "ok    identity: " in out
    sandbox.platform.connections.append(
        {"id": "dg_1", "name": "Web + CRM", "dataSets": [{"id": first["dataset_id"]}]}
    )
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 0 and "in Web + CRM" in out, out

    # records of that mapping conform to the schema setup made (the stand-in validates them)
    world.put_mapping({**MAPPING, "aep": aep})
    world.env.update(DESTINATIONS="aep", ADOBE_SETTLE_SECONDS="0")
    rng = random.Random(2)
    record = world.deliver([_hits(rng, 80, 10)], DAY)
    matched = world.pending(record)[::2]
    for visitor in matched:
        sandbox.marketo.add_lead(visitor, Account_Type__c="Customer", Annual_Revenue__c=1250.5,
                                 Customer_Since__c="2019-04-01")  # fmt: skip
    for _ in range(4):
        world.invoke({})
    batches = list(sandbox.platform.batches.values())
    assert batches and all(b["status"] == "success" and b["metrics"]["failedRecordCount"] == 0
                           for b in batches), batches  # fmt: skip
    assert world.report(KEY)["uploaded_rows"] == len(matched)


def test_aep_check_names_a_field_the_schema_lacks(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    fields = {"Account_Type__c": "_acme.crm.accountType"}
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({**MAPPING, "aep": {"sandbox": "prod", "fields": fields}}))
    code, out, _ = _cli(capsys, "aep", "setup", "--mapping", str(mapping), "--json")
    dataset = json.loads(out)["dataset_id"]
    more = {**fields, "Industry": "_acme.crm.industry"}
    mapping.write_text(json.dumps({**MAPPING, "aep": {"sandbox": "prod", "dataset_id": dataset,
                                                      "fields": more}}))  # fmt: skip
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 1 and "_acme.crm.industry (string)" in out
    code, _, err = _cli(capsys, "aep", "setup", "--mapping", str(tmp_path / "none.json"))
    assert code == 2 and "none.json" in err


def test_aep_setup_profile_then_lookup_in_one_sandbox_and_check_passes_on_both(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any, world: World
) -> None:
    """Issue 27 (5): one field group per class (a lookup setup used to reuse the profile's
    group: HTTP 400, not meant for the class), the lookup schema of a class built on the
    record behaviour, and a mapping that gains a field extends the group."""
    fields = {"Account_Type__c": "_acme.crm.accountType"}
    made = {}
    for kind in ("profile", "lookup"):
        mapping = tmp_path / f"{kind}.json"
        mapping.write_text(json.dumps({**MAPPING, "aep": {"sandbox": "prod", "fields": fields}}))
        code, out, err = _cli(capsys, "aep", "setup", "--class", kind, "--mapping",
                              str(mapping), "--json")  # fmt: skip
        assert code == 0, err
        made[kind] = json.loads(out)
        sandbox.platform.connections.append(
            {
                "id": f"dg_{kind}",
                "name": f"CJA {kind}",
                "dataSets": [{"id": made[kind]["dataset_id"]}],
            }
        )
    assert made["profile"]["field_group_id"] != made["lookup"]["field_group_id"]
    lookup_schema = sandbox.platform.schemas[made["lookup"]["schema_id"]]
    classes = [p["$ref"] for p in lookup_schema["allOf"] if p["$ref"] in sandbox.platform.classes]
    assert len(classes) == 1  # a class of the tenant's, on the record behaviour
    for kind in ("profile", "lookup"):
        mapping = tmp_path / f"{kind}.json"
        aep = {"sandbox": "prod", "fields": fields, **made[kind]["mapping_aep"]}
        mapping.write_text(json.dumps({**MAPPING, "aep": aep}))
        code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
        assert code == 0, out
    # the mapping gains a field: setup extends the group, check passes again
    more = {**fields, "Industry": "_acme.crm.industry"}
    mapping = tmp_path / "lookup.json"
    aep = {"sandbox": "prod", "fields": more, **made["lookup"]["mapping_aep"]}
    mapping.write_text(json.dumps({**MAPPING, "aep": aep}))
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 1 and "_acme.crm.industry (string)" in out
    code, out, _ = _cli(capsys, "aep", "setup", "--class", "lookup", "--mapping", str(mapping))
    assert code == 0 and "_acme.crm.industry" in out and "nothing changed" not in out, out
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 0, out


def test_listings_are_read_to_their_last_page(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """Issue 27 (6): Schema Registry listings (``_links.next``) and CJA connections (``last``)
    are read to their end: a large org's setup finds its own group, check finds the
    connection on the third page."""
    sandbox.platform.list_page = 2
    sandbox.platform.connections_page = 1
    for n in range(5):  # other teams' field groups before ours
        sandbox.platform.fieldgroups[f"https://ns.adobe.com/acme/fieldgroups/other{n}"] = {
            "$id": f"https://ns.adobe.com/acme/fieldgroups/other{n}",
            "title": f"other {n}",
        }
    mapping = tmp_path / "mapping.json"
    fields = {"Account_Type__c": "_acme.crm.accountType"}
    mapping.write_text(json.dumps({**MAPPING, "aep": {"sandbox": "prod", "fields": fields}}))
    for _ in range(2):
        code, out, _ = _cli(capsys, "aep", "setup", "--mapping", str(mapping), "--json")
        made = json.loads(out)
    assert not made["changed"]  # found on a later page: nothing created twice
    for n in range(2):  # two connections with the dataset first: ours is on page three
        sandbox.platform.connections.append(
            {"id": f"dg_{n}", "name": f"other {n}", "dataSets": [{"id": made["dataset_id"]}]}
        )
    sandbox.platform.connections.append({"id": "dg_9", "name": "Web + CRM",
                                         "dataSets": [{"id": made["dataset_id"]}]})  # fmt: skip
    aep = {"sandbox": "prod", "fields": fields, **made["mapping_aep"]}
    mapping.write_text(json.dumps({**MAPPING, "aep": aep}))
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 0 and "in other 0, other 1, Web + CRM" in out, out


def test_aep_check_says_the_permissions_and_a_section_before_setup_refuses_only_aep(
    world: World, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    fields = {"Account_Type__c": "_acme.crm.accountType"}
    section = {"sandbox": "prod", "fields": fields}  # written before `aep setup`: no dataset
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({**MAPPING, "aep": section}))
    code, out, err = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert code == 2 and "aep.dataset_id: not set" in err and "aep setup" in err
    # the other destinations run meanwhile (the section is the aep destination's business)
    world.put_mapping({**MAPPING, "aep": section})
    record = world.deliver([_hits(random.Random(4), 40, 10)], DAY)
    world.add_leads(world.pending(record)[::2])
    world.invoke({})
    assert world.report(KEY)["state"] != "failed", world.report(KEY)
    world.env.update(DESTINATIONS="aep")
    summary = world.invoke({"delivery": KEY})
    assert "aep.dataset_id is not set" in json.dumps(summary), summary
    capsys.readouterr()  # the function's own log lines

    code, out, _ = _cli(capsys, "aep", "setup", "--mapping", str(mapping), "--json")
    dataset = json.loads(out)["dataset_id"]
    mapping.write_text(json.dumps({**MAPPING, "aep": {**section, "dataset_id": dataset}}))
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert "ok    permissions: Manage Datasets, Manage Schemas in sandbox prod" in out, out
    sandbox.platform.permissions.discard("manage-datasets")  # the profile lacks one
    code, out, _ = _cli(capsys, "aep", "check", "--mapping", str(mapping))
    assert (
        code == 1
        and "FAIL  permissions: the credential lacks, in sandbox prod: Manage Datasets" in out
    ), out
