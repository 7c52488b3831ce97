import pytest

from feedsync.datafeed.manifest import parse_manifest
from feedsync.errors import ManifestError

GOOD = """Datafeed-Manifest-Version: 1.0
Lookup-Files: 1
Data-Files: 2
Total-Records: 600

Lookup-File: acme_2026-11-20-lookup_data.tar.gz
MD5-Digest: 5FC56E6872B75870D9BE809FDC97459F
File-Size: 3129118

Data-File: 01-acme_2026-11-20.tsv.gz
MD5-Digest: 994c3109e0ddbd7c66c360426eaf0cd1
File-Size: 75830
Record-Count: 592

Data-File: 02-acme_2026-11-20.tsv.gz
MD5-Digest: 00000000000000000000000000000000
File-Size: 10
Record-Count: 8
"""


def test_parses_sections():
    manifest = parse_manifest(GOOD)
    assert manifest.total_records == 600
    assert [f.name for f in manifest.data_files] == [
        "01-acme_2026-11-20.tsv.gz",
        "02-acme_2026-11-20.tsv.gz",
    ]
    lookup = manifest.lookup_files[0]
    assert (lookup.md5, lookup.size, lookup.records) == (
        "5fc56e6872b75870d9be809fdc97459f",
        3129118,
        None,
    )


def test_crlf_and_extra_blank_lines_are_fine():
    assert parse_manifest("\r\n\r\n" + GOOD.replace("\n", "\r\n") + "\r\n\r\n").total_records == 600


def test_zero_data_files():
    text = "Datafeed-Manifest-Version: 1.0\nLookup-Files: 0\nData-Files: 0\nTotal-Records: 0\n"
    manifest = parse_manifest(text)
    assert manifest.files == ()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (GOOD.replace("Total-Records: 600", "Total-Records: 601"), "Total-Records: 601"),
        (GOOD.replace("Data-Files: 2", "Data-Files: 3"), "Data-Files: 3"),
        (GOOD.replace("File-Size: 75830", "File-Size: 75,830"), "line 12:"),
        (GOOD.replace("MD5-Digest: 994c", "MD5-Digest: zz4c"), "line 11:"),
        (GOOD.replace("Record-Count: 8\n", ""), "'Record-Count' is missing"),
        (GOOD.replace("Lookup-Files: 1\n", ""), "'Lookup-Files' is missing"),
        (GOOD.replace("File-Size: 10", "File-Size 10"), "line 17:"),
        (GOOD.replace("02-acme", "01-acme"), "listed twice"),
        (GOOD + "MD5-Digest: 00000000000000000000000000000000\n", "repeated"),
        ("", "empty"),
    ],
)
def test_malformed_manifests_name_the_problem(broken, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(broken, "acme_2026-11-20.txt")
