"""Reading Retry-After: seconds, an HTTP date, or something unusable."""

from __future__ import annotations

import email.utils
import time

import requests

from feedsync.transport import retry_after


def _answer(value: str | None) -> requests.Response:
    response = requests.Response()
    if value is not None:
        response.headers["Retry-After"] = value
    return response


def test_retry_after_forms() -> None:
    assert retry_after(_answer("2.5")) == 2.5
    assert retry_after(_answer(None)) is None
    assert retry_after(_answer("soon")) is None  # unusable: the caller backs off instead
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after(_answer(later)) or 0) <= 31
    assert retry_after(_answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0
