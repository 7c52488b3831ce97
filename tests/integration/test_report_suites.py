"""One stack, many report suites: a data source account, a mapping and a CRM id column per
suite; a suite without a data source is "not configured", never uploaded elsewhere; suites
outside REPORT_SUITES are ignored and counted."""

from __future__ import annotations

import json
import random

import pytest

from feedsync.config import ParseFunctionConfig
from feedsync.settings import ParseSettings
from sandbox import feedgen
from sandbox.world import World

DAY = "2026-11-20"


def _two_suites(world: World) -> None:
    rng = random.Random(5)
    for rsid in ("acmeprod", "acmedev"):
        record = world.deliver([feedgen.random_hits(400, rng, 100)], DAY, rsid=rsid)
        world.add_leads(world.pending(record)[::4])


def test_each_suite_goes_to_its_own_data_source_with_its_own_mapping(world: World) -> None:
    world.box.adobe.datasource_accounts["acmedev"] = {
        202: world.box.adobe._account_record(202, "feedsync dev")
    }
    world.env.update(DATA_SOURCE_ID="", DATA_SOURCE_IDS="acmeprod=101,acmedev=202")
    dev_mapping = {
        "visitor_id_field": "Adobe_Visitor_ID",
        "success_event": "Event 9",
        "columns": {"id": "evar 40"},  # headers are case-insensitive: written as Evar 40
    }
    world.state.put("config/mapping.acmedev.json", json.dumps(dev_mapping).encode())
    _two_suites(world)
    summary = world.invoke({})
    assert {d["status"] for d in summary["deliveries"]} == {"complete"}
    jobs = world.box.adobe.datasource_jobs.values()
    by_suite = {j["rsid"]: j["data_source_id"] for j in jobs}
    assert by_suite == {"acmeprod": 101, "acmedev": 202}
    dev_files = [
        world.box.adobe.datasource_files[j["job_id"]] for j in jobs if j["rsid"] == "acmedev"
    ]
    assert all(b"Date\ttransactionID\tEvent 9\tEvar 40\n" in f for f in dev_files)


def test_a_suite_without_a_data_source_is_not_configured_never_uploaded_elsewhere(
    world: World,
) -> None:
    world.env.update(DATA_SOURCE_ID="", DATA_SOURCE_IDS="acmeprod=101")
    _two_suites(world)
    summary = world.invoke({})
    statuses = {d["key"].rsplit("/", 1)[-1]: d for d in summary["deliveries"]}
    assert statuses[f"acmeprod_{DAY}"]["status"] == "complete"
    dev = statuses[f"acmedev_{DAY}"]
    assert (
        dev["status"] == "not_configured" and "add acmedev=<id> to DATA_SOURCE_IDS" in dev["error"]
    )
    assert {j["rsid"] for j in world.box.adobe.datasource_jobs.values()} == {"acmeprod"}
    assert not world.state.exists(f"enriched/adobe/acmedev/acmedev_{DAY}")


def test_suites_outside_the_allow_list_are_ignored_and_counted(world: World) -> None:
    world.env.update(REPORT_SUITES="acmeprod")
    _two_suites(world)
    summary = world.invoke({})
    assert [d["key"] for d in summary["deliveries"]] == [f"adobe/acmeprod/acmeprod_{DAY}"]
    assert summary["ignored"] == [f"adobe/acmedev/acmedev_{DAY}"]


def test_the_crm_id_column_can_differ_per_suite() -> None:
    config = ParseFunctionConfig.from_env(
        {
            "STATE_BUCKET": "bkt",
            "CRM_ID_COLUMN": "post_evar22",
            "CRM_ID_COLUMNS": "acmedev=post_evar5",
        }
    )
    assert config.settings.for_rsid("acmedev").crm_id_column == "post_evar5"
    assert config.settings.for_rsid("acmeprod").crm_id_column == "post_evar22"
    assert ParseSettings().for_rsid("x") == ParseSettings()
    with pytest.raises(Exception, match="CRM_ID_COLUMNS"):
        ParseFunctionConfig.from_env({"STATE_BUCKET": "bkt", "CRM_ID_COLUMNS": "acmedev"})
