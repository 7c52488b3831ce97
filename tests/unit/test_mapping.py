"""Mapping file validation, value normalisation, upload file splitting, run events."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from feedsync.crm.ratelimit import Limits, LimitState, decide
from feedsync.crm.sources import FileSource
from feedsync.daily.destinations.uploadfile import build_datasource_files
from feedsync.daily.lookup import map_records
from feedsync.daily.mapping import MappedRow, Mapping, Rejected, normalise
from feedsync.errors import ConfigError, FeedsyncError
from feedsync.settings import RunRequest

GOOD = {
    "visitor_id_field": "Adobe_Visitor_ID",
    "success_event": "Event 51",
    "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23"},
}


def _mapping(**changes: object) -> Mapping:
    return Mapping.from_json(json.dumps({**GOOD, **changes}), "mapping.json")


def test_the_documented_mapping_is_accepted() -> None:
    mapping = _mapping()
    assert mapping.headers == ["Date", "transactionID", "Event 51", "Evar 22", "Evar 23"]
    assert mapping.crm_fields == ["Adobe_Visitor_ID", "id", "Account_Type__c"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"success_event": "event51"}, "success_event: 'event51' is not a metric"),
        (
            {"columns": {"id": "eVar22"}},
            "columns.id: column header 'eVar22' needs the space: Evar 22",
        ),
        ({"columns": {"a": "Evar 22", "b": "Evar 22"}}, "header 'Evar 22' is used twice"),
        ({"columns": {"a": "Event 3"}}, "is a metric"),
        ({"columns": {}}, "map at least one CRM field"),
        ({"visitor_id_field": ""}, "visitor_id_field"),
        ({"max_bytes": {"Evar 22": 5000}}, "max_bytes"),
        ({"colums": {}}, "unknown keys: colums"),
    ],
)
def test_bad_mappings_name_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"mapping\.json") as caught:
        _mapping(**changes)
    assert message in str(caught.value)


def test_not_json_is_named() -> None:
    with pytest.raises(ConfigError, match=r"m\.json: not valid JSON"):
        Mapping.from_json("{", "m.json")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        ("  a\tb\r\nc;d  ", "a b cd"),
        ("é" * 200, "é" * 127),  # 255 bytes cut on a character boundary
    ],
)
def test_normalise(value: object, expected: str) -> None:
    assert normalise(value, 255) == expected


def test_map_records_keeps_order_and_rejects_odd_values() -> None:
    mapping = _mapping(max_bytes={"Evar 23": 4})
    found = {
        "v1": {"id": 1, "Account_Type__c": "Customer"},
        "v3": {"id": 3, "Account_Type__c": [1]},
    }
    rows, rejected = map_records(["v3", "v2", "v1"], found, mapping)
    assert rows == [
        MappedRow(
            "v1", "1", {"Evar 22": "1", "Evar 23": "Cust"}, {"id": "1", "Account_Type__c": "Cust"}
        )
    ]
    assert rejected == [Rejected("v3", "Account_Type__c: a list is not a column value")]
    assert mapping.map("v4", {"id": None, "Account_Type__c": ""}) == Rejected(
        "v4", "no mapped field has a value"
    )


def test_upload_files_split_under_the_size_limit_with_a_header_each() -> None:
    mapping = _mapping()
    rows = [
        MappedRow(f"{n:038d}", str(n), {"Evar 22": str(n), "Evar 23": "x" * 50}, {})
        for n in range(100)
    ]
    built = build_datasource_files(
        rows, mapping, dt.date(2026, 11, 20), comment="c", max_part_bytes=2000
    )
    assert len(built.parts) > 3 and built.rows == 100
    for part in built.parts:
        assert len(part) <= 2000
        assert part.decode().splitlines()[:2] == [
            "# c",
            "Date\ttransactionID\tEvent 51\tEvar 22\tEvar 23",
        ]
    assert sum(len(p.decode().splitlines()) - 2 for p in built.parts) == 100


def test_rows_over_4096_bytes_are_rejected() -> None:
    mapping = _mapping(columns={f"f{n}": f"Evar {n}" for n in range(1, 20)})
    row = MappedRow("v", "", {f"Evar {n}": "y" * 255 for n in range(1, 20)}, {})
    built = build_datasource_files([row], mapping, dt.date(2026, 1, 1))
    assert built.rows == 0 and "Adobe's limit is 4096" in built.rejected[0].reason


def test_run_request_from_events() -> None:
    assert RunRequest.from_event({"scheduled_time": "2026-11-23T06:00:00Z"}) == RunRequest()
    assert RunRequest.from_event({"date": "2026-11-20", "dry_run": True}).date == dt.date(
        2026, 11, 20
    )
    assert RunRequest.from_event({}, dry_run_default=True).dry_run
    request = RunRequest(delivery="adobe/x/x_2026-11-20", continuation=2)
    assert RunRequest.from_event(request.event()).continuation == 3
    for bad, message in (
        ({"date": "20.11.2026"}, "expected YYYY-MM-DD"),
        ({"date": "2026-11-20", "delivery": "k"}, "not both"),
        ({"dry_run": "yes"}, "expected true or false"),
        ({"continuation": -1}, "expected a count"),
    ):
        with pytest.raises(FeedsyncError, match=message):
            RunRequest.from_event(bad)


def test_limiter_decision_is_a_sliding_window_with_leases() -> None:
    limits = Limits(calls=2, window=10.0, concurrency=1, margin=0.0)
    state = LimitState()
    assert decide(state, 0.0, limits, "a") == (True, 0.0)
    taken, wait = decide(state, 1.0, limits, "b")
    assert not taken  # the lease of "a" is held: concurrency 1
    state.leases.clear()
    assert decide(state, 1.0, limits, "b")[0]
    state.leases.clear()
    taken, wait = decide(state, 5.0, limits, "c")
    assert not taken and wait == pytest.approx(5.0)  # the first stamp leaves the window at 10
    assert decide(state, 10.01, limits, "c")[0]


def test_file_source_reads_csv_and_json_lines() -> None:
    csv_data = (
        b"Adobe_Visitor_ID,id,Account_Type__c,Secret_Field\nv1,1,Customer,x\nv2,2,Partner,y\n"
    )
    source = FileSource(csv_data, "export.csv", "Adobe_Visitor_ID", ["id", "Account_Type__c"])
    assert source.lookup(["v2", "v9"]) == {
        "v2": {"Adobe_Visitor_ID": "v2", "id": "2", "Account_Type__c": "Partner"}
    }
    jsonl = b'{"Adobe_Visitor_ID": "v1", "id": 1}\n\n{"Adobe_Visitor_ID": "v1", "id": 2}\n'
    assert FileSource(jsonl, "e.jsonl", "Adobe_Visitor_ID", ["id"]).lookup(["v1"])["v1"]["id"] == 1
    with pytest.raises(ConfigError, match="no 'Adobe_Visitor_ID' column"):
        FileSource(b"a,b\n1,2\n", "bad.csv", "Adobe_Visitor_ID", ["id"])
