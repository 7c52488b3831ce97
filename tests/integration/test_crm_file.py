"""CRM_SOURCE=file with CRM_FILE=s3://... (finding 3): the deployed function reads its export
from S3 over HTTP - a real response stream, so this runs against a moto *server*, where the
old code failed with "I/O operation on closed file"."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from feedsync.aws.clients import AwsClients
from feedsync.daily.mapping import Mapping
from feedsync.wiring import file_source

MAPPING = {"visitor_id_field": "Adobe_Visitor_ID", "success_event": "Event 51",
           "columns": {"id": "Evar 22", "Account_Type__c": "Evar 23"}}  # fmt: skip


@pytest.fixture
def s3_over_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    try:
        yield client
    finally:
        server.stop()


def test_finding_3_an_s3_export_is_read_through_a_real_response_stream(s3_over_http: Any) -> None:
    s3_over_http.create_bucket(Bucket="state-bucket-x")
    rows = ["Adobe_Visitor_ID,id,Account_Type__c"]
    rows += [f"{n:038d},{100 + n},Customer" for n in range(2_000)]
    s3_over_http.put_object(
        Bucket="state-bucket-x", Key="crm/export.csv", Body="\n".join(rows).encode()
    )
    clients = AwsClients(s3=s3_over_http, table=None, secrets=None)  # type: ignore[arg-type]
    mapping = Mapping.from_json(json.dumps(MAPPING), "mapping")
    source = file_source(clients, "s3://state-bucket-x/crm/export.csv", mapping)
    found = source.lookup([f"{n:038d}" for n in (0, 1999, 5000)])
    assert sorted(found) == [f"{0:038d}", f"{1999:038d}"]
    assert found[f"{1999:038d}"]["id"] == "2099"
    # when the export was written: a delivery closed after it waits for a newer one
    assert source.staleness(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) is None
    later = source.staleness(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert later is not None and "upload a newer export" in later


def test_an_export_saved_compressed_or_in_another_encoding_is_named_not_half_read(
    s3_over_http: Any,
) -> None:
    import gzip

    from feedsync.errors import ConfigError

    s3_over_http.create_bucket(Bucket="state-bucket-x")
    clients = AwsClients(s3=s3_over_http, table=None, secrets=None)  # type: ignore[arg-type]
    mapping = Mapping.from_json(json.dumps(MAPPING), "mapping")
    text = "Adobe_Visitor_ID,id,Account_Type__c\n" + "".join(
        f"{n:038d},{100 + n},Clienté\n" for n in range(3_000)
    )
    saved = {
        "gz.csv": (gzip.compress(text.encode()), "gzip-compressed (gunzip it first)"),
        "utf16.csv": (text.encode("utf-16"), "UTF-16 (save it as UTF-8)"),
        "latin1.csv": (text.encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    }
    for name, (body, said) in saved.items():
        s3_over_http.put_object(Bucket="state-bucket-x", Key=f"crm/{name}", Body=body)
        with pytest.raises(ConfigError) as caught:
            file_source(clients, f"s3://state-bucket-x/crm/{name}", mapping)
        assert str(caught.value).startswith(f"s3://state-bucket-x/crm/{name}: "), caught.value
        assert said in str(caught.value)
    # UTF-8 with Excel's byte-order mark: read whole, accents kept
    s3_over_http.put_object(Bucket="state-bucket-x", Key="crm/bom.csv",
                            Body=b"\xef\xbb\xbf" + text.encode())  # fmt: skip
    source = file_source(clients, "s3://state-bucket-x/crm/bom.csv", mapping)
    found = source.lookup([f"{n:038d}" for n in (0, 2_999)])
    assert found[f"{2_999:038d}"]["Account_Type__c"] == "Clienté" and len(found) == 2
