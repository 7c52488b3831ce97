"""The data source file rules (DESIGN section 4), one at a time."""

from __future__ import annotations

from feedsync.adobe.datasource_file import problems

HEAD = "Date\ttransactionID\tEvent 51\tEvar 22\n"
ROW = "07/13/2015/00/00/00\tv1\t1\tL-1\n"


def test_a_valid_file_with_comments_has_no_problems() -> None:
    assert problems(f"# made by feedsync\n{HEAD}{ROW}{ROW}".encode()) == []


def test_each_rule_is_reported_with_its_line() -> None:
    cases = {
        "Date\ttransactionID\tevent51\tEvar 22\n" + ROW: "'event51' needs the space: Event 51",
        "transactionID\tEvent 51\tEvar 22\nv1\t1\tL-1\n": "no Date column",
        "Date\ttransactionID\tEvar 22\n07/13/2015/00/00/00\tv1\tL-1\n": "no metric column",
        HEAD + "2015-07-13\tv1\t1\tL-1\n": "line 2: Date '2015-07-13' is not MM/DD/YYYY/HH/mm/SS",
        HEAD + "07/13/2015/00/00/00\tv1\t1\n": "line 2: 3 fields, header has 4",
        HEAD + "07/13/2015/00/00/00\t\t1\t\n": "line 2: no dimension value",
        HEAD + "07/13/2015/00/00/00\tv1\t\tL-1\n": "line 2: no metric value",
        HEAD + "07/13/2015/00/00/00\tv1\tone\tL-1\n": "Event 51 value 'one' is not a number",
        HEAD + "07/13/2015/00/00/00\tv1\t1\ta;b\n": "Evar 22 value holds ';'",
        HEAD + "07/13/2015/00/00/00\tv1\t1\t" + "x" * 4100 + "\n": "longer than 4096 bytes",
        HEAD: "no data rows",
        "Date\ttransactionID\tEvent 51\tEvar 251\n" + ROW: "eVars are numbered 1-250",
    }
    for text, expected in cases.items():
        found = problems(text.encode())
        assert any(expected in p for p in found), (expected, found)


def test_more_than_90_days_is_refused() -> None:
    rows = "".join(
        f"{1 + d // 28:02d}/{1 + d % 28:02d}/2015/00/00/00\tv{d}\t1\tL\n" for d in range(91)
    )
    assert problems((HEAD + rows).encode()) == [
        "file spans 91 days; Adobe takes at most 90 per file"
    ]


def test_non_utf8_is_refused() -> None:
    assert problems(HEAD.encode() + b"07/13/2015/00/00/00\tv\xe91\t1\tL\n") == [
        "not UTF-8 at byte 57"
    ]
