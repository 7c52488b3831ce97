import datetime as dt

import pytest

from feedsync.datafeed.naming import FileKind, parse_feed_name
from feedsync.errors import FeedNameError


@pytest.mark.parametrize(
    ("name", "kind", "rsid", "hour", "index"),
    [
        ("01-zwitchdev_2015-07-13.tsv.gz", FileKind.DATA, "zwitchdev", None, 1),
        ("12-acme.prod-eu_2026-11-20-130000.tsv.gz", FileKind.DATA, "acme.prod-eu", "130000", 12),
        ("zwitchdev_2015-07-13-lookup_data.tar.gz", FileKind.LOOKUP, "zwitchdev", None, None),
        ("acme_2026-11-20-010000-lookup_data.tar.gz", FileKind.LOOKUP, "acme", "010000", None),
        ("acme_2026-11-20.tar.gz", FileKind.SINGLE, "acme", None, None),
        ("acme_2026-11-20-230000.zip", FileKind.SINGLE, "acme", "230000", None),
        ("zwitchdev_2015-07-13.txt", FileKind.MANIFEST, "zwitchdev", None, None),
        ("acme_2026-11-20-230000.txt", FileKind.MANIFEST, "acme", "230000", None),
    ],
)
def test_recognises_adobe_names(name, kind, rsid, hour, index):
    parsed = parse_feed_name(name)
    assert (parsed.kind, parsed.delivery.rsid, parsed.delivery.hour, parsed.index) == (
        kind,
        rsid,
        hour,
        index,
    )


def test_files_of_one_delivery_share_its_id_and_names():
    data = parse_feed_name("03-acme_2026-11-20-130000.tsv.gz").delivery
    assert data == parse_feed_name("acme_2026-11-20-130000.txt").delivery
    assert data.id == "acme_2026-11-20-130000"
    assert data.day == dt.date(2026, 11, 20)
    assert data.manifest_name == "acme_2026-11-20-130000.txt"
    assert data.lookup_name == "acme_2026-11-20-130000-lookup_data.tar.gz"


@pytest.mark.parametrize(
    "name", ["README.txt", "acme_2026-13-01.txt", "acme_2026-11-20-250000.txt", "01-acme.tsv.gz"]
)
def test_rejects_other_names(name):
    with pytest.raises(FeedNameError, match=name.replace(".", r"\.")):
        parse_feed_name(name)
