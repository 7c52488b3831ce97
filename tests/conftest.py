"""Shared test set-up: no network beyond loopback, fake AWS credentials, the real fixture."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbox import moto_patches

moto_patches.install()  # TransactWriteItems without moto's whole-table copy

if TYPE_CHECKING:
    from sandbox.run import Sandbox
    from sandbox.world import World

REAL_DELIVERY = Path(__file__).resolve().parents[2] / "shared/fixtures/zwitchdev_2015-07-13"
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
        return _real_connect(self, address)  # type: ignore[arg-type]
    raise RuntimeError(f"network access blocked in tests: {address!r}")


def pytest_report_header() -> str:
    from tests.faults.test_faults import OFFSET, OFFSET_SOURCE, SAMPLE

    return f"fault suite: every {SAMPLE}th kill point from offset {OFFSET} ({OFFSET_SOURCE})"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def real_delivery() -> Path:
    if not (REAL_DELIVERY / "zwitchdev_2015-07-13.txt").is_file():
        pytest.skip(f"the real sample delivery is not at {REAL_DELIVERY} (../shared is absent)")
    return REAL_DELIVERY


# --- secrets must never surface ------------------------------------------------------------
# Every secret a test hands to the code (client secrets, private keys, issued tokens) is
# registered here; after each test, every log record and everything the test report shows
# (exception text, captured stdout/stderr) is scanned for them.
KNOWN_SECRETS: set[str] = set()


class _RecordAll(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a broken format string is not this check's business
            self.lines.append(str(record.msg))
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append(repr(record.exc_info[1]))


def _leaks(text: str) -> list[str]:
    return [s[:6] + "..." for s in KNOWN_SECRETS if len(s) >= 8 and s in text]


@pytest.fixture(autouse=True)
def _function_logs_outlive_the_test() -> Iterator[None]:
    """A Lambda handler loaded in a test binds its JSON log handler (Powertools, copied onto
    every feedsync logger) to that test's captured stdout, which pytest closes afterwards: a
    later test's log line would then fail with "--- Logging error ---" on its stderr. After
    each test those handlers write to the process's own stdout, as a Lambda's always do."""
    yield
    import sys

    for name, log in list(logging.root.manager.loggerDict.items()):
        if not isinstance(log, logging.Logger) or name.split(".")[0] != "feedsync":
            continue
        for handler in log.handlers:
            if type(handler) is logging.StreamHandler:  # not the CLI's own (a subclass)
                handler.stream = sys.__stdout__


@pytest.fixture(autouse=True)
def _no_secret_in_logs() -> Iterator[None]:
    handler = _RecordAll()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # botocore's DEBUG dumps every request and response (the tests' own secret fixtures too);
    # it is off unless a user turns it on, so the scan covers its INFO and above.
    quiet = [logging.getLogger(n) for n in ("botocore", "boto3", "moto", "s3transfer")]
    for log in quiet:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for log in quiet:
            log.setLevel(logging.NOTSET)
    leaked = _leaks("\n".join(handler.lines))
    assert not leaked, f"a secret appeared in a log line: {leaked}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    text = report.longreprtext + "".join(content for _, content in report.sections)
    leaked = _leaks(text)
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"a secret appeared in test output or an exception: {leaked}"


@pytest.fixture
def dynamo_table() -> Iterator[Any]:
    """StateTable as the template defines it, in moto."""
    from moto import mock_aws

    from sandbox.world import create_state_table

    with mock_aws():
        yield create_state_table("feedsync-state-test")


@pytest.fixture
def world(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A whole installation (moto + the stand-ins), its settings in the environment."""
    from moto import mock_aws

    from sandbox.world import World

    with mock_aws():
        built = World(sandbox, tmp_path)
        for name, value in built.env.items():
            monkeypatch.setenv(name, value)
        yield built


@pytest.fixture
def rsa_key_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    KNOWN_SECRETS.update(line for line in private.splitlines() if "PRIVATE KEY" not in line)
    return private, public


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The Adobe (and Marketo) stand-ins on a loopback port, with fast BDIA pacing."""
    from sandbox.adobe import ISSUED_TOKEN_HOOKS
    from sandbox.run import Sandbox

    if KNOWN_SECRETS.add not in ISSUED_TOKEN_HOOKS:
        ISSUED_TOKEN_HOOKS.append(KNOWN_SECRETS.add)
    box = Sandbox.start(
        bdia_interval=0.05,
        bdia_group_interval=0.3,
        jobs_page_size=2,
        marketo={"calls_per_window": 100, "window": 20.0, "concurrency": 10},
    )
    KNOWN_SECRETS.add(box.adobe.account.client_secret)
    KNOWN_SECRETS.add(box.marketo.client_secret)
    try:
        yield box
    finally:
        box.stop()
