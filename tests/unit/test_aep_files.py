"""The aep destination's files: XDM records typed as the mapping says, cut under the upload
limit (one file per Platform batch), values that do not fit rejected with their reason."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from feedsync.daily.aep_mapping import AepField, AepMapping, TypeProblem, typed
from feedsync.daily.destinations.aep import AepFiles
from feedsync.daily.destinations.base import Batch
from feedsync.daily.mapping import MappedRow, Mapping

AEP = AepMapping("ds1", "prod", {"Tier": AepField("_acme.crm.tier"),
                                 "Revenue": AepField("_acme.crm.revenue", "number")})  # fmt: skip


def _batch(rows: list[MappedRow]) -> Batch:
    mapping = Mapping("Adobe_Visitor_ID", "Event 51", {"Tier": "Evar 23"}, aep=AEP)
    return Batch("acmeprod", dt.date(2026, 11, 20), "acmeprod_2026-11-20", "k", "g" * 16, 0,
                 rows, mapping)  # fmt: skip


def _row(n: int, revenue: str = "12.5") -> MappedRow:
    values = {"Tier": "gold", "Revenue": revenue}
    return MappedRow(f"{n:038d}", f"L-{n}", {}, values, values)


def test_files_are_cut_under_the_limit_and_every_record_lands_once() -> None:
    rows = [_row(n) for n in range(100)]
    record = AEP.record(rows[0].visitor, rows[0].platform)
    one = len(json.dumps(record, separators=(",", ":"))) + 1  # bytes of one line
    built = AepFiles(max_bytes=one * 30).build(_batch(rows))
    assert [len(f.visitors) for f in built.files] == [30, 30, 30, 10]
    assert all(len(f.data) <= one * 30 for f in built.files)
    lines = [json.loads(x) for f in built.files for x in f.data.splitlines()]
    assert [r["identityMap"]["ECID"][0]["id"] for r in lines] == [r.visitor for r in rows]
    assert lines[0]["_acme"]["crm"] == {"tier": "gold", "revenue": 12.5}
    assert [f.part for f in built.files] == [1, 2, 3, 4]


def test_a_value_that_does_not_fit_its_type_is_rejected_not_sent() -> None:
    built = AepFiles().build(_batch([_row(1), _row(2, revenue="n/a")]))
    assert [r.visitor for r in built.rejected] == [f"{2:038d}"]
    assert "Revenue: 'n/a' is not a number" in built.rejected[0].reason
    assert len(built.files) == 1 and built.files[0].visitors == (f"{1:038d}",)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [("3", "integer", 3), ("2.5", "number", 2.5), ("Yes", "boolean", True),
     ("0", "boolean", False), ("2019-04-01T10:00:00Z", "date", "2019-04-01"), ("x", "string", "x")],
)  # fmt: skip
def test_values_are_typed_as_the_schema_says(text: str, kind: str, value: object) -> None:
    assert typed(text, kind, "f") == value


@pytest.mark.parametrize(("text", "kind"), [("1.5", "integer"), ("maybe", "boolean"),
                                            ("inf", "number"), ("01/04/2019", "date")])  # fmt: skip
def test_values_that_do_not_fit_say_why(text: str, kind: str) -> None:
    with pytest.raises(TypeProblem, match=f"is not a {kind}"):
        typed(text, kind, "f")


def test_a_lookup_dataset_carries_the_ecid_in_its_identity_field() -> None:
    lookup = AepMapping("ds1", "prod", {"Tier": AepField("_acme.crm.tier")},
                        identity_path="_acme.feedsync.ecid")  # fmt: skip
    record = lookup.record("123", {"Tier": "gold"})
    assert record == {"_acme": {"feedsync": {"ecid": "123"}, "crm": {"tier": "gold"}}}


def test_platform_gets_strings_untouched_and_the_data_source_its_cleaned_copy() -> None:
    """Issue 27 (6): the data source clean-up (no ';', 255 bytes) is Analytics', not Platform's."""
    mapping = Mapping("Adobe_Visitor_ID", "Event 51", {"Tier": "Evar 23"}, aep=AEP)
    long = "Gold; EMEA  " + "x" * 400
    row = mapping.map(f"{7:038d}", {"Tier": long, "Revenue": 3, "id": 7})
    assert isinstance(row, MappedRow)
    assert row.values["Evar 23"] == ("Gold EMEA " + "x" * 400).encode()[:255].decode()
    built = AepFiles().build(_batch([row]))
    record = json.loads(built.files[0].data)
    assert record["_acme"]["crm"] == {"tier": long, "revenue": 3.0}


def test_ids_that_cannot_be_ecids_are_refused_before_platform() -> None:
    odd = MappedRow("1234:5678", "L-1", {}, {"Tier": "gold"}, {"Tier": "gold"})
    built = AepFiles().build(_batch([odd, _row(2)]))
    assert [r.visitor for r in built.rejected] == ["1234:5678"]
    assert "Experience Cloud ID" in built.rejected[0].reason
