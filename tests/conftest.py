"""Shared test set-up: no network beyond loopback, fake AWS credentials, the real fixture."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REAL_DELIVERY = Path(__file__).resolve().parents[2] / "shared/fixtures/zwitchdev_2015-07-13"
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
        return _real_connect(self, address)  # type: ignore[arg-type]
    raise RuntimeError(f"network access blocked in tests: {address!r}")


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
