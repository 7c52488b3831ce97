"""The Marketo client and the cross-process rate limiter against the Marketo stand-in."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from feedsync.aws.ratelimit import DynamoRateLimiter
from feedsync.crm.marketo import MarketoClient, MarketoError, MarketoSettings
from feedsync.crm.ratelimit import Limits, LocalRateLimiter
from feedsync.errors import AuthError, QuotaExhaustedError
from feedsync.secret import Secret
from feedsync.transport import RetryPolicy
from sandbox.run import Sandbox


def ecid(n: int) -> str:
    return f"{n:038d}"


def client_for(box: Sandbox, **options: Any) -> MarketoClient:
    settings = MarketoSettings(box.url, box.marketo.client_id, Secret(box.marketo.client_secret))
    options.setdefault("retry", RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05))
    return MarketoClient(settings, **options)


def test_lookup_sends_300_ids_a_call_as_post_with_method_get(sandbox: Sandbox) -> None:
    for n in range(0, 700, 7):
        sandbox.marketo.add_lead(ecid(n), Account_Type__c="Customer", email=f"u{n}@example.com")
    client = client_for(sandbox)
    found = client.lookup(
        "Adobe_Visitor_ID", [ecid(n) for n in range(700)], ["id", "Account_Type__c"]
    )
    assert sorted(found) == [ecid(n) for n in range(0, 700, 7)]
    assert found[ecid(7)]["Account_Type__c"] == "Customer" and "email" not in found[ecid(7)]
    calls = sandbox.server.requests_to("POST", r"^/rest/v1/leads\.json$")
    assert [len(c.form()["filterValues"].split(",")) for c in calls] == [300, 300, 100]
    assert all(
        c.param("_method") == "GET" and c.header("authorization").startswith("Bearer ")
        for c in calls
    )
    assert sandbox.marketo.token_requests == 1 and client.stats.calls == 3
    token_call = sandbox.server.requests_to("POST", r"^/identity/oauth/token$")[0]
    assert "client_secret" not in token_call.target  # in the form body, never in a URL


def test_paging_follows_next_page_token(sandbox: Sandbox) -> None:
    sandbox.marketo.page_size = 2
    for n in range(3):
        for dup in range(3):  # three leads share one visitor id
            sandbox.marketo.add_lead(ecid(n), Account_Type__c=f"t{dup}")
    leads = list(
        client_for(sandbox).leads_by_filter("Adobe_Visitor_ID", [ecid(0), ecid(1), ecid(2)], ["id"])
    )
    assert len(leads) == 9
    assert len(sandbox.server.requests_to("POST", r"leads\.json")) == 5


def test_expired_or_invalid_token_reauthenticates(sandbox: Sandbox) -> None:
    sandbox.marketo.add_lead(ecid(1))
    client = client_for(sandbox)
    assert client.lookup("Adobe_Visitor_ID", [ecid(1)], ["id"])
    for token in sandbox.marketo.tokens:
        sandbox.marketo.tokens[token] = time.time() - 1  # 602 next
    assert client.lookup("Adobe_Visitor_ID", [ecid(1)], ["id"])
    sandbox.marketo.tokens.clear()  # 601 next
    assert client.lookup("Adobe_Visitor_ID", [ecid(1)], ["id"])
    assert sandbox.marketo.refused == {"602": 1, "601": 1}
    assert client.stats.reauths == 2 and sandbox.marketo.token_requests == 3


def test_retryable_codes_are_retried_and_quota_stops(sandbox: Sandbox) -> None:
    sandbox.marketo.add_lead(ecid(2))
    sandbox.marketo.fail_next = ["606", "615", "604", "608", "611", "502"][:5]
    client = client_for(sandbox)
    assert ecid(2) in client.lookup("Adobe_Visitor_ID", [ecid(2)], ["id"])
    assert client.stats.retries == 5
    sandbox.marketo.fail_next = ["607"]
    with pytest.raises(QuotaExhaustedError, match=r"\[607\]"):
        client.lookup("Adobe_Visitor_ID", [ecid(2)], ["id"])
    sandbox.marketo.fail_next = ["1003"]
    with pytest.raises(MarketoError) as caught:
        client.lookup("Adobe_Visitor_ID", [ecid(2)], ["id"])
    assert caught.value.code == "1003"


def test_real_daily_quota_exhaustion(sandbox: Sandbox) -> None:
    sandbox.marketo.daily_quota = 2
    client = client_for(sandbox)
    with pytest.raises(QuotaExhaustedError):
        client.lookup("Adobe_Visitor_ID", [ecid(n) for n in range(900)], ["id"])
    assert client.stats.calls == 3  # two answered, the third refused with 607


def test_stand_in_enforces_url_limit_and_300_values(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    token = client.token().reveal()
    ids = ",".join(ecid(n) for n in range(300))
    too_long = requests.get(
        f"{sandbox.url}/rest/v1/leads.json",
        params={"filterType": "Adobe_Visitor_ID", "filterValues": ids},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert too_long.status_code == 414
    over = requests.post(
        f"{sandbox.url}/rest/v1/leads.json",
        params={"_method": "GET"},
        data={"filterType": "Adobe_Visitor_ID", "filterValues": ids + "," + ecid(301)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    assert over["errors"][0]["code"] == "1003"
    with pytest.raises(ValueError, match=r"1\.\.300"):
        list(client.leads_by_filter("Adobe_Visitor_ID", [ecid(n) for n in range(301)], ["id"]))


def test_bad_credentials_are_an_auth_error_without_the_secret(sandbox: Sandbox) -> None:
    settings = MarketoSettings(sandbox.url, "wrong-client", Secret("marketo-wrong-secret-123"))
    from tests.conftest import KNOWN_SECRETS

    KNOWN_SECRETS.add("marketo-wrong-secret-123")
    with pytest.raises(AuthError, match="Bad client credentials") as caught:
        MarketoClient(settings).lookup("Adobe_Visitor_ID", [ecid(1)], ["id"])
    assert "marketo-wrong" not in str(caught.value)


def _hammer(clients: list[MarketoClient], calls_each: int = 8) -> None:
    """Each client looks ids up from its own thread; the first error is raised."""
    errors: list[Exception] = []

    def work(client: MarketoClient) -> None:
        try:
            for n in range(calls_each):
                client.lookup("Adobe_Visitor_ID", [ecid(n)], ["id"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class AtomicTable:
    """DynamoDB applies a conditional write atomically; moto does not under threads (its check
    and write can interleave). This proxy gives moto DynamoDB's atomicity, one call at a time."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def test_limits_hold_across_invocations_sharing_dynamodb(
    sandbox: Sandbox, dynamo_table: Any
) -> None:
    # Four "invocations" (separate clients and limiters) share only the DynamoDB item.
    sandbox.marketo.calls_per_window, sandbox.marketo.window = 10, 1.0
    sandbox.marketo.concurrency, sandbox.marketo.latency = 3, 0.05
    # margin: time between taking a slot and Marketo receiving the call (0.5 s of 20 s by
    # default); a quarter of this scaled window absorbs scheduling pauses of a loaded 2-core run
    # (0.1 s let one call of 32 land in the next window's count once in a full `make test`).
    limits = Limits(calls=10, window=1.0, concurrency=3, margin=0.25)
    table = AtomicTable(dynamo_table)  # one table for all four, as DynamoDB is one service
    clients = [
        client_for(
            sandbox,
            limiter=DynamoRateLimiter(table, "marketo#sandbox", limits),
            retry=RetryPolicy(attempts=1),
        )
        for _ in range(4)
    ]
    _hammer(clients, 8)
    assert len(sandbox.marketo.call_times) == 32
    assert sandbox.marketo.refused == {}  # never a 606 or 615
    assert sandbox.marketo.max_calls_in_window() <= 10
    assert sandbox.marketo.max_inflight <= 3


def test_without_a_shared_limiter_the_stand_in_refuses(sandbox: Sandbox) -> None:
    # The control: per-process limiters each allow 10, together they break Marketo's limit.
    sandbox.marketo.calls_per_window, sandbox.marketo.window = 10, 1.0
    limits = Limits(calls=10, window=1.0, concurrency=3, margin=0.05)
    clients = [
        client_for(sandbox, limiter=LocalRateLimiter(limits), retry=RetryPolicy(attempts=1))
        for _ in range(4)
    ]
    with pytest.raises(MarketoError):
        _hammer(clients)
    assert sandbox.marketo.refused.get("606", 0) > 0


def test_stand_in_refuses_over_concurrency_with_615_and_the_client_retries(
    sandbox: Sandbox,
) -> None:
    sandbox.marketo.concurrency, sandbox.marketo.latency = 1, 0.1
    limits = Limits(calls=100, window=20.0, concurrency=5)
    retry = RetryPolicy(attempts=10, base_delay=0.1, max_delay=0.4)
    clients = [client_for(sandbox, limiter=LocalRateLimiter(limits), retry=retry) for _ in range(3)]
    _hammer(clients, 2)  # retries with backoff until each call gets through
    assert sandbox.marketo.refused.get("615", 0) > 0
    assert sandbox.marketo.max_inflight == 1
    assert len(sandbox.marketo.call_times) == 6


def test_feedsync_sandbox_command_prints_working_exports(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "feedsync", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        exports = {}
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                exports[name] = value
            if line.startswith("# what it received"):
                break
        inherited = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET_ARN")}
        env = {**inherited, **exports, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, "-m", "feedsync", "adobe", "whoami", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["companies"][0]["globalCompanyId"] == "acmeco0"
    finally:
        process.terminate()
        process.wait(timeout=10)
