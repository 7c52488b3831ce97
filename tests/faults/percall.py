"""Per-call faults: one external call misbehaves the way real services do, then the run is
repeated until done and checked like a kill point (exactly once, nothing lost)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.client
from botocore.exceptions import ClientError

from tests.faults.harness import MAX_INVOCATIONS, Installation, Outcome, Scenario, check


@dataclass(frozen=True)
class Fault:
    name: str
    destination: str
    arm: Callable[[Installation], None]  # set the fault up after the delivery is parsed


def _sandbox(
    method: str, pattern: str, kind: str, times: int = 1, **options: Any
) -> Callable[[Installation], None]:
    def arm(install: Installation) -> None:
        install.box.server.inject(method, pattern, kind, times, **options)

    return arm


def _marketo(*codes: str) -> Callable[[Installation], None]:
    def arm(install: Installation) -> None:
        install.box.marketo.fail_next.extend(codes)

    return arm


def _quota(install: Installation) -> None:
    install.box.marketo.daily_quota = len(install.box.marketo.call_times) + 1


@contextmanager
def _aws_error(service: str, nth: int) -> Any:
    """The ``nth`` call to ``service`` (on this thread) fails with a 500 InternalError."""
    original = botocore.client.BaseClient._make_api_call
    seen = {"n": 0}
    thread = threading.get_ident()

    def api(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == service and threading.get_ident() == thread:
            seen["n"] += 1
            if seen["n"] == nth:
                raise ClientError(
                    {"Error": {"Code": "InternalError", "Message": "injected"},
                     "ResponseMetadata": {"HTTPStatusCode": 500}},
                    operation,
                )  # fmt: skip
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = api  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


DS_UPLOAD = r"/datasources/job/acmeprod/101$"
FAULTS = [
    Fault(
        "Adobe 429 + Retry-After on an upload",
        "datasources",
        _sandbox("POST", DS_UPLOAD, "status", status=429, retry_after="0.2"),
    ),
    Fault(
        "Adobe 503 on an upload (not taken)",
        "datasources",
        _sandbox("POST", DS_UPLOAD, "status", status=503),
    ),
    Fault(
        "Adobe 500 on an upload (outcome unknown)",
        "datasources",
        _sandbox("POST", DS_UPLOAD, "status", status=500),
    ),
    Fault("upload answer lost", "datasources", _sandbox("POST", DS_UPLOAD, "lose-response")),
    Fault(
        "malformed job list",
        "datasources",
        _sandbox("GET", r"/datasources/job/acmeprod/101$", "malformed"),
    ),
    Fault("BDIA answer lost", "bdia", _sandbox("POST", r"/aa/collect/v1/events$", "lose-response")),
    Fault("BDIA 502", "bdia", _sandbox("POST", r"/aa/collect/v1/events$", "status", status=502)),
    Fault(
        "Target batch answer lost",
        "target",
        _sandbox("POST", r"/v2/profile/batchUpdate$", "lose-response"),
    ),
    Fault(
        "Target token 503 twice",
        "target",
        _sandbox("POST", r"/target/authentication/token$", "status", times=2, status=503),
    ),
    Fault("Marketo 601 then 602", "datasources", _marketo("601", "602")),
    Fault("Marketo 606 and 615", "datasources", _marketo("606", "615", "606")),
    Fault("Marketo 607 (daily quota)", "datasources", _quota),
    Fault(
        "Marketo identity 503",
        "datasources",
        _sandbox("POST", r"/identity/oauth/token$", "status", status=503),
    ),
]
AWS_FAULTS = [("s3", n) for n in (3, 9, 20, 40)] + [("dynamodb", n) for n in (2, 7, 15, 30)]


def _until_done(
    install: Installation, name: str, reset: Callable[[], None] | None = None
) -> Outcome:
    invocations = 0
    while not install.done() and invocations < MAX_INVOCATIONS:
        with contextlib.suppress(Exception):  # a failed invocation: Lambda retries it
            install.invoke()
        invocations += 1
        if reset is not None:
            reset()
    return check(install, name, name, invocations)


def per_call_faults(workdir: Path) -> list[Outcome]:
    from tests.faults.sweep import installation

    outcomes = []
    for n, fault in enumerate(FAULTS):
        with installation(Scenario(fault.destination), workdir / f"f{n}") as install:
            install.deliver(0)
            fault.arm(install)

            def new_day(box: Any = install.box) -> None:
                box.marketo.daily_quota = 50_000

            outcomes.append(_until_done(install, fault.name, new_day))
    for n, (service, nth) in enumerate(AWS_FAULTS):
        name = f"{service} InternalError on call {nth}"
        with installation(Scenario("datasources"), workdir / f"a{n}") as install:
            install.deliver(0)
            with _aws_error(service, nth), contextlib.suppress(Exception):
                install.invoke()
            outcomes.append(_until_done(install, name))
    return outcomes
