"""The secret wrapper and the suite-wide secret scanner both do their job."""

from __future__ import annotations

import pickle

import pytest

from feedsync.secret import Secret
from tests.conftest import KNOWN_SECRETS, _leaks


def test_secret_never_shows_its_value() -> None:
    secret = Secret("p8e-very-secret-value")
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        str([secret]),
        str({"k": secret}),
    ]
    assert all("very-secret" not in text for text in shown)
    assert secret.reveal() == "p8e-very-secret-value"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_scanner_finds_a_registered_secret_in_text() -> None:
    KNOWN_SECRETS.add("scanner-canary-0123456789")
    assert _leaks("log: token=scanner-canary-0123456789 sent") == ["scanne..."]
    assert _leaks("log: nothing to see") == []
