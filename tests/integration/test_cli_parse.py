"""``feedsync parse`` on local deliveries: what users, scripts and acceptance checks run."""

import hashlib
import json
import random
import subprocess
import sys

import pytest

from feedsync.cli import main
from sandbox import feedgen


def run(capsys, *args):
    code = main(["parse", *map(str, args)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def multi_file_delivery(tmp_path, seed=11):
    rng = random.Random(seed)
    first = feedgen.random_hits(1500, rng, 300)
    second = feedgen.random_hits(1500, rng, 300)
    # a visitor pending in file 1 and known in file 2 is known in the delivery
    shared = f"{12345:038d}"
    first.append(feedgen.Hit(visitor=shared, noisy="before\tkey\\columns\n"))
    second.append(feedgen.Hit(visitor=shared, crm_id="CRM-1"))
    # a visitor known only through an excluded hit stays pending
    ghost = f"{777:038d}"
    first.append(feedgen.Hit(visitor=ghost))
    second.append(feedgen.Hit(visitor=ghost, crm_id="CRM-2", exclude_hit="1"))
    # duplicated hits change counts, not visitors
    second.extend(first[:50])
    return feedgen.make_delivery(tmp_path / "feed", [first, second]), shared, ghost


def test_multi_file_delivery_totals_and_pending_ids(tmp_path, capsys):
    delivery, shared, ghost = multi_file_delivery(tmp_path)
    expected = delivery.expected
    pending_out = tmp_path / "pending.txt"
    code, out, _ = run(capsys, delivery.folder, "--pending-out", pending_out)
    assert code == 0
    assert out["complete"] is True
    assert (
        out["rows"],
        out["counted_rows"],
        out["excluded_rows"],
        out["rows_without_visitor"],
    ) == (
        expected.rows,
        expected.counted_rows,
        expected.excluded_rows,
        expected.rows_without_visitor,
    )
    assert out["visitors_pending"] == len(expected.final_pending)
    assert out["visitors_known"] == len(expected.known)
    pending = pending_out.read_text().splitlines()
    assert pending == sorted(expected.final_pending)
    assert shared not in pending and ghost in pending
    assert [f["name"] for f in out["files"]] == [
        "acmeprod_2026-11-20-lookup_data.tar.gz",
        "01-acmeprod_2026-11-20.tsv.gz",
        "02-acmeprod_2026-11-20.tsv.gz",
    ]
    assert all(f["md5_ok"] and f["size_ok"] for f in out["files"])
    assert [f["records_ok"] for f in out["files"]] == [None, True, True]


def test_composite_visitor_key(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    code, out, _ = run(
        capsys,
        delivery.folder / delivery.manifest_name,
        "--visitor-column",
        "post_visid_high",
        "--visitor-column",
        "post_visid_low",
    )
    assert code == 0
    assert out["visitors_pending"] == len(delivery.expected.final_pending)


def test_digest_mismatch_exits_non_zero_naming_file_and_check(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    target = delivery.folder / "02-acmeprod_2026-11-20.tsv.gz"
    manifest = delivery.folder / delivery.manifest_name
    good = hashlib.md5(target.read_bytes()).hexdigest()
    manifest.write_text(manifest.read_text().replace(good, "0" * 32))
    code, out, err = run(capsys, delivery.folder)
    assert code == 1
    assert out["complete"] is False
    assert "02-acmeprod_2026-11-20.tsv.gz: MD5-Digest check failed" in err
    assert [f["md5_ok"] for f in out["files"]] == [True, True, False]


def test_truncated_file_fails_the_delivery(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    target = delivery.folder / "01-acmeprod_2026-11-20.tsv.gz"
    target.write_bytes(target.read_bytes()[:-100])
    code, _, err = run(capsys, delivery.folder)
    assert code == 1
    assert "01-acmeprod_2026-11-20.tsv.gz: truncated gzip" in err


def test_missing_file_fails_the_delivery(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    (delivery.folder / "02-acmeprod_2026-11-20.tsv.gz").unlink()
    code, _, err = run(capsys, delivery.folder)
    assert code == 1
    assert "02-acmeprod_2026-11-20.tsv.gz: listed in the manifest but missing" in err


def test_record_count_mismatch(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    manifest = delivery.folder / delivery.manifest_name
    text = manifest.read_text()
    total = delivery.expected.rows
    text = text.replace("Record-Count: 1502", "Record-Count: 1503").replace(
        f"Total-Records: {total}", f"Total-Records: {total + 1}"
    )
    manifest.write_text(text)
    code, _, err = run(capsys, delivery.folder)
    assert code == 1
    assert (
        "01-acmeprod_2026-11-20.tsv.gz: Record-Count check failed (manifest 1503, file 1502)" in err
    )


def test_malformed_manifest(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    manifest = delivery.folder / delivery.manifest_name
    manifest.write_text(manifest.read_text().replace("Data-Files: 2", "Data-Files two"))
    code, out, err = run(capsys, delivery.folder)
    assert code == 1 and out["complete"] is False
    assert "acmeprod_2026-11-20.txt: line 3: expected 'Key: value'" in err


def test_zero_data_file_delivery_is_complete_and_empty(tmp_path, capsys):
    delivery = feedgen.make_delivery(tmp_path / "feed", [])
    code, out, _ = run(capsys, delivery.folder)
    assert code == 0
    assert (out["complete"], out["rows"], out["visitors_pending"]) == (True, 0, 0)


def test_unknown_column_is_named(tmp_path, capsys):
    delivery, _, _ = multi_file_delivery(tmp_path)
    code, _, err = run(capsys, delivery.folder, "--crm-id-column", "post_evar99")
    assert code == 1
    assert "post_evar99 not in this feed's 300 columns" in err


def test_real_delivery(real_delivery, tmp_path, capsys):
    pending_out = tmp_path / "pending.txt"
    args = ["--visitor-column", "post_visid_high", "--visitor-column", "post_visid_low"]
    code, out, _ = run(
        capsys, real_delivery, *args, "--crm-id-column", "post_evar3", "--pending-out", pending_out
    )
    assert code == 0
    assert (out["rows"], out["counted_rows"], out["excluded_rows"]) == (592, 592, 0)
    assert (out["visitors_pending"], out["visitors_known"]) == (338, 0)
    assert len(pending_out.read_text().splitlines()) == 338
    assert out["files"][1] == {
        "name": "01-zwitchdev_2015-07-13.tsv.gz",
        "md5_ok": True,
        "size_ok": True,
        "records": 592,
        "records_ok": True,
        "error": None,
    }
    code, out, _ = run(capsys, real_delivery, *args, "--crm-id-column", "post_evar1")
    assert (out["visitors_pending"], out["visitors_known"]) == (0, 338)


def test_console_entry_point_runs_as_module(real_delivery):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "feedsync",
            "parse",
            str(real_delivery),
            "--visitor-column",
            "post_visid_high",
            "--visitor-column",
            "post_visid_low",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 592


@pytest.mark.parametrize("bad", ["nowhere", "two-manifests"])
def test_bad_paths_are_clear(tmp_path, capsys, bad):
    path = tmp_path / bad
    if bad == "two-manifests":
        path.mkdir()
        (path / "a_2026-01-01.txt").write_text("")
        (path / "a_2026-01-02.txt").write_text("")
    code, _, err = run(capsys, path)
    assert code == 2 and str(path) in err


def test_single_file_hourly_delivery(tmp_path, capsys):
    rng = random.Random(21)
    hits = feedgen.random_hits(2000, rng, 300)
    delivery = feedgen.make_single_file_delivery(tmp_path / "single", hits)
    pending_out = tmp_path / "pending.txt"
    code, out, err = run(capsys, delivery.folder, "--pending-out", pending_out)
    assert code == 0, err
    assert out["delivery"] == "acmeprod_2026-11-20-130000"
    assert out["rows"] == delivery.expected.rows
    assert out["visitors_pending"] == len(delivery.expected.final_pending)
    assert pending_out.read_text().splitlines() == sorted(delivery.expected.final_pending)
    assert out["files"] == [
        {"name": "acmeprod_2026-11-20-130000.tar.gz", "md5_ok": True, "size_ok": True,
         "records": 2000, "records_ok": True, "error": None},
    ]  # fmt: skip


def test_hourly_multi_file_delivery(tmp_path, capsys):
    rng = random.Random(8)
    files = [feedgen.random_hits(500, rng, 100), feedgen.random_hits(500, rng, 100)]
    delivery = feedgen.make_delivery(tmp_path / "hourly", files, day="2026-11-20-050000")
    code, out, _ = run(capsys, delivery.folder)
    assert code == 0
    assert out["delivery"] == "acmeprod_2026-11-20-050000"
    assert out["visitors_pending"] == len(delivery.expected.final_pending)


def test_zip_single_file_is_refused_clearly(tmp_path, capsys):
    delivery = feedgen.make_single_file_delivery(
        tmp_path / "zip", feedgen.random_hits(10, random.Random(1), 5)
    )
    archive = delivery.folder / "acmeprod_2026-11-20-130000.tar.gz"
    zipped = archive.with_name("acmeprod_2026-11-20-130000.zip")
    zipped.write_bytes(b"PK\x03\x04 a real zip would start like this")
    archive.unlink()
    manifest = delivery.folder / delivery.manifest_name
    manifest.write_text(manifest.read_text().replace(archive.name, zipped.name))
    code, _, err = run(capsys, delivery.folder)
    assert code == 1
    assert "zip single-file packaging is not supported" in err
