"""Every request feedsync's clients send, checked against the spec table (tests/conformance/
spec.py): method, path, query parameters, required headers, media types, body fields."""

from __future__ import annotations

import time

import pytest

from feedsync.adobe import bdia, target
from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.bdia import BdiaClient, Pacer
from feedsync.adobe.cja import CjaClient
from feedsync.adobe.datafeeds import DataFeedClient
from feedsync.adobe.datasources import DataSourcesClient
from feedsync.adobe.target import TargetClient
from feedsync.crm.marketo import MarketoClient, MarketoSettings
from feedsync.secret import Secret
from sandbox.adobe_feeds import FEED_ID
from sandbox.run import Sandbox
from tests.adobe_helpers import session_for
from tests.conformance.spec import OPERATIONS, operation_for, problems
from tests.integration.test_adobe_clients import BDIA_COLUMNS, _bdia_rows

DS_FILE = b"# c\nDate\ttransactionID\tEvent 51\tEvar 22\n7/3/2015\tv1\t1\tL-1\n"


def _exercise_analytics(sandbox: Sandbox) -> None:
    session = session_for(sandbox)
    analytics = AnalyticsClient(session)
    analytics.discovery()
    client = DataSourcesClient(analytics, settle=0.0)
    client.accounts("acmeprod")
    created = client.create_account("acmeprod", "conformance", "ops@example.com")
    client.account("acmeprod", created["data_source_id"])
    client.delete_account("acmeprod", created["data_source_id"])
    job = client.upload_once("acmeprod", 101, "conformance.txt", DS_FILE)
    client.job("acmeprod", 101, job["job_id"])
    list(client.jobs("acmeprod", 101, status="uploaded"))
    _exercise_feeds(sandbox, analytics)


def _exercise_feeds(sandbox: Sandbox, analytics: AnalyticsClient) -> None:
    feeds = DataFeedClient(analytics, page=2)
    done = sandbox.feeds.add_request("2026-11-18")
    failed = sandbox.feeds.add_request("2026-11-19", "error", error=(300, "Delivery Error"))
    sandbox.feeds.add_request("2026-11-20")
    assert len(list(feeds.requests("acmeprod", FEED_ID, "2026-11-01T00:00:00Z"))) == 3  # 2 pages
    feeds.ask("resend", FEED_ID, done["requestId"])
    feeds.ask("redo", FEED_ID, failed["requestId"])
    feeds.delivery_user_arn()


def _exercise_bdia(sandbox: Sandbox) -> None:
    client = BdiaClient(session_for(sandbox), Pacer(interval=0.0, group_interval=0.0))
    data = bdia.write_files(BDIA_COLUMNS, _bdia_rows(3))[0]
    client.validate(data)
    client.upload_once(data, "conformance-1", "conformance-key")
    client.key_status("conformance-key")


def _exercise_target(sandbox: Sandbox) -> None:
    client = TargetClient(session_for(sandbox), "acme", "acme")
    client.activities()
    client.offers()
    client.audiences()
    client.batch([{"operationId": 1, "relativeUrl": "/v1/offers", "method": "GET"}])
    url = client.batch_update(target.write_batches(["Tier"], [("L-1", {"Tier": "gold"})])[0])
    client.batch_status(url, details=True)
    client.update_profile({"Tier": "silver"}, third_party_id="L-1")
    client.get_profile(third_party_id="L-1")


def _exercise_cja(sandbox: Sandbox) -> None:
    client = CjaClient(session_for(sandbox))
    client.users_me()
    list(client.dataviews())
    client.create_dataview({"name": "conformance"})
    client.connections("some-dataset")


def _exercise_aep(sandbox: Sandbox) -> None:
    from feedsync.adobe.aep import AepClient
    from feedsync.aep_setup import check, setup
    from feedsync.daily.aep_mapping import AepField, AepMapping

    client = AepClient(session_for(sandbox), "prod")
    fields = {"Tier": AepField("_acme.crm.tier")}
    setup(client, fields, "profile", lambda line: None)  # stats, lists, creates
    made = setup(client, fields, "lookup", lambda line: None)  # the same sandbox: a class
    aep = AepMapping(made.dataset_id, "prod", fields, identity_path=made.identity)
    check(client, aep, CjaClient(session_for(sandbox)).connections)  # lookups, descriptors
    more = {**fields, "Region": AepField("_acme.crm.region")}
    setup(client, more, "lookup", lambda line: None)  # the mapping gained a field: a PATCH
    created = client.create_batch(made.dataset_id, "conformance-1")
    client.upload_file(
        created["id"],
        made.dataset_id,
        "part-1.json",
        b'{"_acme": {"crm": {"tier": "gold"}, "feedsync": {"ecid": "1"}}}\n',
    )
    client.complete_batch(created["id"])
    client.batch(created["id"])
    list(client.failed_records(created["id"]))
    client.find_batch(made.dataset_id, "conformance-1")


def _exercise_marketo(sandbox: Sandbox) -> None:
    settings = MarketoSettings(
        sandbox.url, sandbox.marketo.client_id, Secret(sandbox.marketo.client_secret)
    )
    MarketoClient(settings).lookup("Adobe_Visitor_ID", ["v1", "v2"], ["id"])


def _exercise_jwt(sandbox: Sandbox, rsa_key_pair: tuple[str, str]) -> None:
    private, public = rsa_key_pair
    sandbox.adobe.account.public_key_pem = public
    session = session_for(
        sandbox,
        auth="jwt",
        technical_account_id=sandbox.adobe.account.technical_account_id,
        private_key=private,
    )
    AnalyticsClient(session).discovery()


def test_every_client_request_conforms_to_the_published_specs(
    sandbox: Sandbox, rsa_key_pair: tuple[str, str]
) -> None:
    _exercise_analytics(sandbox)
    _exercise_bdia(sandbox)
    _exercise_target(sandbox)
    _exercise_cja(sandbox)
    _exercise_aep(sandbox)
    _exercise_marketo(sandbox)
    _exercise_jwt(sandbox, rsa_key_pair)
    sent = [r for r in sandbox.server.received if not r.path.startswith("/_sandbox")]
    departures = [p for request in sent for p in problems(request)]
    assert departures == []
    used = {op.name for r in sent if (op := operation_for(r)) is not None}
    assert used == {op.name for op in OPERATIONS}, "every operation in the table is exercised"


def test_the_target_profile_token_is_cached_and_refreshed_once_on_401(sandbox: Sandbox) -> None:
    client = TargetClient(session_for(sandbox), "acme", "acme")
    file = target.write_batches(["Tier"], [("L-1", {"Tier": "gold"})])[0]
    client.batch_update(file)
    client.batch_update(file)
    assert sandbox.adobe.profile_token_requests == 1  # cached until shortly before expiresIn
    sandbox.adobe.profile_tokens.issued.clear()  # the token was regenerated in Target's UI
    client.batch_update(file)
    assert sandbox.adobe.profile_token_requests == 2  # one refresh after the 401
    assert repr(client.profile_token()) == "Secret('***')"  # a credential: never printed


def test_the_profile_token_is_never_trusted_beyond_an_hour(sandbox: Sandbox) -> None:
    # admin-api.json gives expiresIn no unit; a value in milliseconds must not keep a token
    # for 41 days
    sandbox.adobe.profile_token_lifetime = 3_600_000
    client = TargetClient(session_for(sandbox), "acme", "acme")
    client.profile_token()
    expires = client.profile_tokens.expires_at()
    assert expires is not None and expires - time.time() <= 3600


@pytest.mark.parametrize(
    ("answer", "status"),
    [({"error": "File not found"}, 404), ({"error": "File not found"}, 200)],
)
def test_bdia_key_lookup_reads_file_not_found_whatever_the_status(
    sandbox: Sandbox, answer: dict[str, str], status: int
) -> None:
    sandbox.server.inject("GET", r"/events/key/", "status", status=status, body=answer)
    client = BdiaClient(session_for(sandbox), Pacer(interval=0.0, group_interval=0.0))
    assert client.key_status("k") is None


def test_bdia_key_lookup_never_takes_an_error_body_for_success(sandbox: Sandbox) -> None:
    from feedsync.adobe.errors import AdobeApiError

    sandbox.server.inject("GET", r"/events/key/", "status", status=200, body={"error": "boom"})
    client = BdiaClient(session_for(sandbox), Pacer(interval=0.0, group_interval=0.0))
    with pytest.raises(AdobeApiError, match="without a file"):
        client.key_status("k")
