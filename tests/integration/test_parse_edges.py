"""The parse path at its edges (the parse issue's eight wrong answers, each with its test)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from feedsync.cli import main
from feedsync.config import ParseFunctionConfig
from feedsync.datafeed import nativescan
from feedsync.datafeed.hits import RowScanner
from feedsync.datafeed.naming import parse_feed_name
from feedsync.datafeed.visitors import HitLayout, VisitorTally
from feedsync.errors import ConfigError, CorruptFileError
from feedsync.parse.step import close_delivery, parse_data_file
from feedsync.settings import ParseSettings
from feedsync.storage import LocalStore, MemoryStore, get_json
from sandbox import feedgen


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict | None, str]:
    code = main(["parse", *map(str, args)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def small(tmp_path: Path, hits: list[feedgen.Hit] | None = None, **kw: object) -> feedgen.Delivery:
    rng = random.Random(3)
    files = [hits if hits is not None else feedgen.random_hits(300, rng, 60)]
    return feedgen.make_delivery(tmp_path / "feed", files, **kw)  # type: ignore[arg-type]


# 1. a re-delivered day with a new column layout ------------------------------------------------


def test_a_result_made_with_an_old_header_is_parsed_again(tmp_path: Path) -> None:
    hits = [feedgen.Hit(f"{n:038d}", crm_id="C" if n % 2 else "") for n in range(40)]
    old = small(tmp_path, hits)
    feed, state = LocalStore(old.folder), MemoryStore()
    data_name = next(n for n in old.files if n.endswith(".tsv.gz"))
    first = parse_data_file(feed, state, "", parse_feed_name(data_name), ParseSettings())
    assert first.status == "parsed"
    # Adobe re-sends the day: same data file bytes, but the new column_headers.tsv swaps the
    # CRM column with another one (same column count); the data event ran before the archive
    headers = feedgen.column_headers(300)
    i, j = headers.index("post_evar22"), headers.index("post_evar23")
    headers[i], headers[j] = headers[j], headers[i]
    lookup = next(n for n in old.files if n.endswith("lookup_data.tar.gz"))
    archive = feedgen.lookup_archive(headers)
    (old.folder / lookup).write_bytes(archive)
    data = {data_name: (old.files[data_name], 40)}
    (old.folder / old.manifest_name).write_text(feedgen.manifest_text({lookup: archive}, data))
    delivery = parse_feed_name(old.manifest_name).delivery
    record = close_delivery(feed, state, "", delivery, ParseSettings())
    assert record.complete
    assert [f.parsed_now for f in record.data_files] == [True]  # not the stale result
    fresh = close_delivery(feed, MemoryStore(), "", delivery, ParseSettings())
    figures = (record.visitors_pending, record.visitors_known)
    assert figures == (fresh.visitors_pending, fresh.visitors_known)
    assert figures != (20, 20)  # what the old layout (post_evar22 in place) gave


# 2. ragged rows that compensate ---------------------------------------------------------------


def _ragged(n_columns: int = 6) -> bytes:
    good = "\t".join(["0", "1", "v1", "", "x", "y"]) + "\n"
    extra = "\t".join(["0", "1", "v2", "", "x", "y", "EXTRA"]) + "\n"
    short = "\t".join(["0", "1", "v3", "", "x"]) + "\n"
    return (good + extra + short + good).encode()


def test_rows_that_compensate_each_other_are_still_refused_by_both_scanners() -> None:
    headers = ["exclude_hit", "hit_source", "mcvisid", "post_evar22", "a", "b"]
    layout = HitLayout.from_headers(headers, ("mcvisid",), "post_evar22")
    scanner = RowScanner(len(headers), layout.wanted, "f.tsv.gz")
    with pytest.raises(CorruptFileError, match="row 2 has 7 fields"):
        list(scanner.rows([_ragged()]))
    if nativescan.available():
        with pytest.raises(CorruptFileError, match="row 2 has 7 fields"):
            nativescan.NativeScan(layout, VisitorTally(layout), "f.tsv.gz").run([_ragged()])


# 3 and 7. one column in two roles, too many visitor columns ----------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--visitor-column", "mcvisid", "--crm-id-column", "mcvisid"], "must differ"),
        (["--visitor-column", "mcvisid", "--visitor-column", "mcvisid"], "named twice"),
        (["--visitor-column", "exclude_hit"], "decides which hits count"),
        (["--crm-id-column", "hit_source"], "decides which hits count"),
        ([a for n in range(9) for a in ("--visitor-column", f"col_{n:03d}")], "at most 8"),
    ],
)
def test_a_column_in_two_roles_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    delivery = small(tmp_path)
    code, out, err = run(capsys, delivery.folder, *args)
    assert code == 2 and out is None and message in err


def test_the_function_refuses_the_same_at_cold_start() -> None:
    env = {"STATE_BUCKET": "bkt", "VISITOR_COLUMNS": "mcvisid,hit_source"}
    with pytest.raises(ConfigError, match="decides which hits count"):
        ParseFunctionConfig.from_env(env)
    many = {"STATE_BUCKET": "bkt", "VISITOR_COLUMNS": ",".join(f"c{n}" for n in range(9))}
    with pytest.raises(ConfigError, match="at most 8"):
        ParseFunctionConfig.from_env(many)


# 4 and 5. ids outside ASCII, ids holding escapes ----------------------------------------------


def test_ids_round_trip_byte_exactly_to_pending_out_and_the_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = "caf\xe9-1"  # a Latin-1 feed: byte E9
    utf8 = "caf\xc3\xa9-2"  # a UTF-8 feed: bytes C3 A9 (one character per byte here)
    tab, newline = "tab\there", "new\nline"
    hits = [feedgen.Hit(v) for v in (latin1, utf8, tab, newline)]
    delivery = small(tmp_path, hits)
    out = tmp_path / "pending.txt"
    state = tmp_path / "state"
    code, _, _ = run(capsys, delivery.folder, "--pending-out", out, "--state-dir", state)
    assert code == 0
    lines = out.read_bytes().split(b"\n")[:-1]
    assert sorted(lines) == sorted(
        [b"caf\xe9-1", b"caf\xc3\xa9-2", b"tab\\there", b"new\\nline"]
    )  # the feed's bytes; tab and newline escaped: one id per line
    stream = next(state.rglob("*.visitors.gz"))
    raw = gzip.decompress(stream.read_bytes())
    assert b"caf\xe9-1\tP\n" in raw and b"caf\xc3\xa9-2\tP\n" in raw


def test_the_crm_lookup_gets_each_id_as_text_without_double_encoding(tmp_path: Path) -> None:
    from feedsync.parse.results import pending_visitors

    hits = [feedgen.Hit("caf\xe9-1"), feedgen.Hit("caf\xc3\xa9-2"), feedgen.Hit("plain")]
    delivery = small(tmp_path, hits)
    state = MemoryStore()
    record = close_delivery(
        LocalStore(delivery.folder), state, "", parse_feed_name(delivery.manifest_name).delivery,
        ParseSettings(),
    )  # fmt: skip
    assert sorted(pending_visitors(state, record)) == ["café-1", "café-2", "plain"]
    assert sorted(pending_visitors(state, record, "iso-8859-1")) == [
        "caf\xc3\xa9-2", "café-1", "plain"
    ]  # fmt: skip


# 6. manifests ---------------------------------------------------------------------------------


def test_a_day_without_traffic_is_complete_and_says_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = feedgen.make_delivery(tmp_path / "feed", [])
    code, out, _ = run(capsys, delivery.folder)
    assert code == 0 and out is not None
    assert (out["complete"], out["empty"], out["rows"], out["visitors_pending"]) == (
        True,
        True,
        0,
        0,
    )


def test_a_data_file_the_manifest_does_not_list_is_named_in_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = small(tmp_path)
    stray = "09-acmeprod_2026-11-20.tsv.gz"
    (delivery.folder / stray).write_bytes(gzip.compress(b""))
    code, out, err = run(capsys, delivery.folder)
    assert code == 0 and out is not None
    assert any(stray in w for w in out["warnings"]) and f"warning: {stray}" in err


def test_a_non_ascii_digit_in_the_manifest_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = small(tmp_path)
    manifest = delivery.folder / delivery.manifest_name
    text = manifest.read_text().replace("Total-Records: 300", "Total-Records: 300\u00b2")
    manifest.write_text(text, encoding="iso-8859-1")
    code, out, err = run(capsys, delivery.folder)
    assert code == 1 and out is not None and out["complete"] is False
    assert "line 4: 'Total-Records' must be a whole number" in err and "Traceback" not in err


def test_the_function_writes_a_failed_record_for_a_malformed_manifest(tmp_path: Path) -> None:
    delivery = small(tmp_path)
    manifest = delivery.folder / delivery.manifest_name
    manifest.write_text(
        manifest.read_text().replace("File-Size: ", "File-Size: 3\u00b2"), encoding="iso-8859-1"
    )
    state = MemoryStore()
    record = close_delivery(
        LocalStore(delivery.folder), state, "", parse_feed_name(delivery.manifest_name).delivery,
        ParseSettings(),
    )  # fmt: skip
    stored = get_json(state, f"deliveries/{record.key}.json")
    assert stored is not None and stored["status"] == "failed"
    assert "must be a whole number" in stored["reasons"][0]


# 8. CLI mistakes ------------------------------------------------------------------------------


def test_pending_out_into_a_missing_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = small(tmp_path)
    code, out, err = run(capsys, delivery.folder, "--pending-out", tmp_path / "nope" / "p.txt")
    assert code == 2 and out is None and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["notes.txt", "01-acmeprod_2026-11-20.tsv.gz"])
def test_parse_on_a_file_that_is_not_a_manifest_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    code, out, err = run(capsys, path)
    assert code == 2 and out is None and str(path) in err
