"""Every Adobe client call against the sandbox over loopback, and the faults real APIs have."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest
import requests

from feedsync.adobe import bdia, target
from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.bdia import BdiaClient, Pacer
from feedsync.adobe.cja import CjaClient
from feedsync.adobe.datasources import DataSourcesClient
from feedsync.adobe.errors import AdobeApiError
from feedsync.adobe.target import TargetClient
from feedsync.deadline import Deadline
from feedsync.errors import OutcomeUnknownError, RateLimitedError, ServiceUnavailableError
from feedsync.transport import RetryPolicy
from sandbox.run import Sandbox
from tests.adobe_helpers import Sleeps, session_for

GOOD_FILE = (
    b"# feedsync upload\n"
    b"Date\ttransactionID\tEvent 51\tEvar 22\tEvar 23\n"
    b"07/13/2015/00/00/00\t5150\t1\tL-1\tCustomer\n"
    b"07/13/2015/00/00/00\t5151\t1\tL-2\tPartner\n"
)


def _datasources(box: Sandbox, settle: float = 0.0, **options: Any) -> DataSourcesClient:
    return DataSourcesClient(AnalyticsClient(session_for(box, **options)), settle=settle)


def test_datasource_accounts_list_create_get_delete(sandbox: Sandbox) -> None:
    ds = _datasources(sandbox)
    assert [a["data_source_id"] for a in ds.accounts("acmeprod")] == [101]
    created = ds.create_account("acmeprod", "feedsync test", "ops@example.com")
    assert ds.account("acmeprod", created["data_source_id"])["name"] == "feedsync test"
    assert ds.delete_account("acmeprod", created["data_source_id"])["success"] is True
    sent = sandbox.server.requests_to("GET", r"/datasources/account/acmeprod$")[0]
    assert sent.header("x-proxy-global-company-id") == "acmeco0"


def test_upload_is_multipart_file_and_job_runs_to_success(sandbox: Sandbox) -> None:
    ds = _datasources(sandbox)
    job = ds.upload("acmeprod", 101, "acmeprod_2015-07-13_part1.txt", GOOD_FILE)
    assert job["status"] == "uploaded" and job["rows"] == 2
    sent = sandbox.server.requests_to("POST", r"/datasources/job/acmeprod/101$")[0]
    assert sent.header("content-type").startswith("multipart/form-data; boundary=")
    assert sandbox.adobe.datasource_files[job["job_id"]] == GOOD_FILE
    final = ds.wait("acmeprod", 101, job["job_id"], Deadline.after(30), poll=0.01)
    assert final["status"] == "success"


def test_jobs_walks_every_page_and_every_status(sandbox: Sandbox) -> None:
    ds = _datasources(sandbox)
    ids = [ds.upload("acmeprod", 101, f"f{n}.txt", GOOD_FILE)["job_id"] for n in range(5)]
    ds.job("acmeprod", 101, ids[0])  # -> processing
    listed = list(ds.jobs("acmeprod", 101))
    assert sorted(j["job_id"] for j in listed) == sorted(ids)
    assert [j["job_id"] for j in ds.jobs("acmeprod", 101, status="processing")] == [ids[0]]
    pages = sandbox.server.requests_to("GET", r"/datasources/job/acmeprod/101$")
    assert {r.param("page") for r in pages if r.param("status") == "uploaded"} == {"1", "2"}


def test_file_breaking_the_rules_is_refused_with_adobes_reason(sandbox: Sandbox) -> None:
    bad = b"Date\ttransactionID\tevent51\teVar22\n07/13/2015\t1\t1\ta;b\n"
    with pytest.raises(AdobeApiError) as caught:
        _datasources(sandbox).upload("acmeprod", 101, "bad.txt", bad)
    assert caught.value.status == 400
    assert "'eVar22' needs the space: Evar 22" in str(caught.value)
    assert not sandbox.adobe.datasource_jobs


def test_sandbox_refuses_multipart_without_boundary_and_missing_headers(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    token = session.tokens.token().reveal()
    url = f"{sandbox.url}/api/acmeco0/datasources/job/acmeprod/101"
    headers = {"Authorization": f"Bearer {token}", "x-api-key": "sandbox-client-id"}
    answer = requests.post(
        url,
        data=GOOD_FILE,
        headers={
            **headers,
            "x-proxy-global-company-id": "acmeco0",
            "Content-Type": "multipart/form-data",
        },
        timeout=5,
    )
    assert answer.status_code == 400 and "boundary" in answer.json()["message"]
    answer = requests.get(url, params={"status": "uploaded"}, headers=headers, timeout=5)
    assert answer.status_code == 400 and "x-proxy-global-company-id" in answer.json()["message"]


def test_429_with_retry_after_is_honoured(sandbox: Sandbox) -> None:
    sleeps = Sleeps()
    sandbox.server.inject(
        "GET",
        r"/datasources/account/",
        "status",
        status=429,
        retry_after="0.2",
        body={"error_code": "429050", "message": "Too many requests"},
    )
    assert _datasources(sandbox, sleep=sleeps).accounts("acmeprod")
    assert sleeps.calls == [0.2]


def test_5xx_then_success_and_5xx_until_gone(sandbox: Sandbox) -> None:
    sandbox.server.inject("GET", r"/datasources/account/", "status", times=2, status=502)
    assert _datasources(sandbox).accounts("acmeprod")
    sandbox.server.inject("GET", r"/datasources/account/", "status", times=10, status=503)
    with pytest.raises(ServiceUnavailableError, match=r"HTTP 503"):
        _datasources(sandbox).accounts("acmeprod")


def test_retry_after_beyond_the_deadline_gives_up_at_once(sandbox: Sandbox) -> None:
    sleeps = Sleeps()
    sandbox.server.inject("GET", r"/discovery/me", "status", status=429, retry_after="120")
    client = AnalyticsClient(session_for(sandbox, sleep=sleeps, deadline=Deadline.after(20)))
    with pytest.raises(RateLimitedError):
        client.discovery()
    assert sleeps.calls == []


def test_read_timeout_is_retried_for_reads(sandbox: Sandbox) -> None:
    sandbox.server.inject("GET", r"/discovery/me", "delay", seconds=1.5)
    client = AnalyticsClient(session_for(sandbox, read_timeout=0.5))
    assert client.discovery()
    assert len(sandbox.server.requests_to("GET", r"/discovery/me")) == 2


def test_upload_whose_answer_is_lost_is_not_sent_twice(sandbox: Sandbox) -> None:
    sandbox.server.inject("POST", r"/datasources/job/", "lose-response")
    job = _datasources(sandbox).upload("acmeprod", 101, "lost.txt", GOOD_FILE)
    assert job["filename"] == "lost.txt"
    assert len(sandbox.adobe.datasource_jobs) == 1
    assert len(sandbox.server.requests_to("POST", r"/datasources/job/")) == 1


def test_upload_that_failed_server_side_is_sent_again_once(sandbox: Sandbox) -> None:
    sandbox.server.inject("POST", r"/datasources/job/", "status", status=500)
    job = _datasources(sandbox).upload("acmeprod", 101, "retry.txt", GOOD_FILE)
    assert job["status"] == "uploaded"
    assert len(sandbox.adobe.datasource_jobs) == 1
    assert len(sandbox.server.requests_to("POST", r"/datasources/job/")) == 2


def test_upload_timeout_is_not_retried_blindly(sandbox: Sandbox) -> None:
    sandbox.server.inject("POST", r"/datasources/job/", "delay", seconds=1.0)
    ds = _datasources(sandbox, read_timeout=0.3, settle=1.5)
    job = ds.upload("acmeprod", 101, "slow.txt", GOOD_FILE)
    time.sleep(0.8)  # the slow first attempt lands meanwhile
    assert (
        len([j for j in sandbox.adobe.datasource_jobs.values() if j["filename"] == "slow.txt"]) == 1
    )
    assert job["filename"] == "slow.txt"


def test_malformed_response_is_a_clear_error(sandbox: Sandbox) -> None:
    sandbox.server.inject("GET", r"/discovery/me", "malformed")
    with pytest.raises(AdobeApiError, match="expected JSON, got text/html"):
        AnalyticsClient(session_for(sandbox)).discovery()


BDIA_COLUMNS = [
    "marketingCloudVisitorID",
    "timestamp",
    "reportSuiteID",
    "userAgent",
    "linkType",
    "linkName",
    "eVar22",
]


def _bdia_rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "marketingCloudVisitorID": f"{v:038d}",
            "timestamp": str(1436745600 + t),
            "reportSuiteID": "acmeprod",
            "userAgent": "feedsync/0.1",
            "linkType": "o",
            "linkName": "crm enrichment",
            "eVar22": f"L-{v}",
        }
        for v in range(n)
        for t in (0, 60)
    ]


def test_bdia_writer_validate_and_upload_with_pacing(sandbox: Sandbox) -> None:
    files = bdia.write_files(BDIA_COLUMNS, _bdia_rows(50))
    assert len(files) == 1 and bdia.file_problems(files[0]) == []
    client = BdiaClient(session_for(sandbox), Pacer(interval=0.05, group_interval=0.3))
    assert client.validate(files[0]) == {"success": "File is valid"}  # endpoints.md
    first = client.upload(files[0], "group-1", "acmeprod-2015-07-13-1")
    second = client.upload(files[0], "group-1", "acmeprod-2015-07-13-2")  # paced 0.3 s
    assert first["rows"] == 100 and second["idempotency_key"].endswith("-2")
    assert client.key_status("acmeprod-2015-07-13-1")["file_id"] == first["file_id"]
    assert client.key_status("never-sent") is None
    sent = sandbox.server.requests_to("POST", r"/aa/collect/v1/events$")
    assert [r.header("x-adobe-vgid") for r in sent] == ["group-1", "group-1"]


def test_bdia_writer_splits_at_the_size_limit_and_keeps_time_order() -> None:
    files = bdia.write_files(BDIA_COLUMNS, _bdia_rows(300), max_bytes=20_000)
    assert len(files) > 1
    assert sum(len(gzip.decompress(f).splitlines()) - 1 for f in files) == 600
    writer = bdia.BdiaFileWriter(BDIA_COLUMNS)
    rows = _bdia_rows(1)
    writer.add(rows[1])
    with pytest.raises(ValueError, match="not in time order"):
        writer.add(rows[0])
    with pytest.raises(ValueError, match="missing column userAgent"):
        bdia.BdiaFileWriter(["marketingCloudVisitorID", "timestamp", "reportSuiteID", "pageName"])


def test_bdia_lost_answer_is_resolved_by_idempotency_key(sandbox: Sandbox) -> None:
    data = bdia.write_files(BDIA_COLUMNS, _bdia_rows(3))[0]
    sandbox.server.inject("POST", r"/aa/collect/v1/events$", "lose-response")
    client = BdiaClient(session_for(sandbox), Pacer(interval=0.05, group_interval=0.3))
    result = client.upload(data, "group-2", "key-lost-1")
    assert result["idempotency_key"] == "key-lost-1"
    assert len(sandbox.server.requests_to("POST", r"/aa/collect/v1/events$")) == 1
    assert list(sandbox.adobe.bdia_ingested) == ["key-lost-1"]


def test_sandbox_refuses_bad_bdia_files_and_pacing_violations(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    client = BdiaClient(session, Pacer(interval=0.05, group_interval=0.3))
    with pytest.raises(AdobeApiError, match="not a gzip file"):
        client.validate(b"marketingCloudVisitorID,timestamp\n1,2\n")
    lacking = gzip.compress(b"marketingCloudVisitorID,timestamp,reportSuiteID\n1,2,x\n")
    with pytest.raises(AdobeApiError, match="missing column userAgent"):
        client.validate(lacking)
    data = bdia.write_files(BDIA_COLUMNS, _bdia_rows(2))[0]
    unpaced = BdiaClient(session, Pacer(interval=0, group_interval=0))
    unpaced.session.transport.retry = RetryPolicy(attempts=1)
    time.sleep(0.1)  # past the sandbox's 0.05 s overall spacing after the validate calls
    unpaced.upload(data, "group-3", "k1")
    with pytest.raises(RateLimitedError) as caught:
        unpaced.upload(data, "group-3", "k2")
    assert caught.value.status == 429


def test_target_bulk_profile_update_round_trip(sandbox: Sandbox) -> None:
    client = TargetClient(session_for(sandbox), "acme", "acme")
    files = target.write_batches(
        ["Account_Type", "Region"],
        [
            ("L-1", {"Account_Type": "Customer, Gold", "Region": "EMEA"}),
            ("L-2", {"Region": "A&B=c"}),
        ],
    )
    assert files[0].startswith(
        b"batch=thirdPartyId,Account_Type,Region\nL-1,Customer%2C%20Gold,EMEA\n"
    )
    status_url = client.batch_update(files[0])
    first = client.batch_status(status_url)
    assert first.status == "incomplete" and not first.finished  # profile-bulk-api.md states
    done = client.batch_status(status_url, details=True)
    assert done.finished and done.state == "complete" and done.size == 2
    assert done.details == {
        "consumedCount": 2,
        "successfulUpdates": 2,
        "profilesNotFound": 0,
        "failedUpdates": 0,
    }
    assert client.get_profile(third_party_id="L-1")["profile"] == {
        "Account_Type": "Customer, Gold",
        "Region": "EMEA",
    }
    client.update_profile({"Tier": "2"}, third_party_id="L-2")
    assert sandbox.adobe.profiles["L-2"] == {"Region": "A&B=c", "Tier": "2"}


def test_target_batches_split_by_rows_and_refuse_ecid_keys() -> None:
    rows = [(f"L-{n}", {"a": "1"}) for n in range(5)]
    assert len(target.write_batches(["a"], rows, max_rows=2)) == 3
    with pytest.raises(ValueError, match="thirdPartyId or pcId"):
        target.BatchFileWriter(["a"], key="mcvisid")


def test_target_admin_lists_use_versioned_media_types(sandbox: Sandbox) -> None:
    client = TargetClient(session_for(sandbox), "acme", "acme")
    assert len(client.activities()) == 3  # two pages of two
    assert client.offers()[0]["name"] == "offer 0"
    assert client.get("audiences", 1001)["id"] == 1001
    assert client.batch([{"operationId": 0}])["results"][0]["statusCode"] == 200
    sent = sandbox.server.requests_to("GET", r"/acme/target/activities$")
    assert {r.header("accept") for r in sent} == {"application/vnd.adobe.target.v3+json"}
    token = session_for(sandbox).tokens.token().reveal()
    answer = requests.get(
        f"{sandbox.url}/acme/target/offers",
        headers={
            "Authorization": f"Bearer {token}",
            "x-api-key": "sandbox-client-id",
            "Accept": "application/json",
        },
        timeout=5,
    )
    assert answer.status_code == 406


def test_cja_me_dataviews_across_pages_and_create(sandbox: Sandbox) -> None:
    client = CjaClient(session_for(sandbox))
    assert client.users_me()["imsOrgId"] == sandbox.adobe.account.org_id
    views = list(client.dataviews(limit=2))
    assert [v["id"] for v in views] == [f"dv_{n:03d}" for n in range(5)]
    assert set(views[0]) == {"id", "name", "owner"}
    created = client.create_dataview({"name": "feedsync view", "parentDataGroupId": "dg_1"})
    assert created["id"] == "dv_005"


def test_outcome_unknown_when_lookup_cannot_tell(sandbox: Sandbox) -> None:
    sandbox.server.inject("POST", r"/data/dataviews", "lose-response")
    client = CjaClient(session_for(sandbox))
    view = client.create_dataview({"name": "once only"})
    assert view["name"] == "once only"
    assert sum(1 for v in sandbox.adobe.dataviews if v["name"] == "once only") == 1
    sandbox.server.inject("POST", r"/m2/acme/v2/profile/batchUpdate", "lose-response")
    tclient = TargetClient(session_for(sandbox), "acme", "acme")
    with pytest.raises(OutcomeUnknownError, match="answer lost"):
        tclient.batch_update(target.write_batches(["a"], [("L-9", {"a": "1"})])[0])
