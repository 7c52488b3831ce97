"""X-Ray costs nothing when off, and still wraps the handler when on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from feedsync import tracing


def handler(event: dict[str, object], context: object) -> dict[str, object]:
    return {"echo": event}


def test_off_returns_the_handler_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert tracing.capture_lambda_handler(handler) is handler


def test_on_wraps_the_handler_with_powertools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")  # Tracer stays local: no X-Ray daemon here
    traced = tracing.capture_lambda_handler(handler)
    assert traced is not handler
    assert traced({"a": 1}, None) == {"echo": {"a": 1}}


def test_off_never_imports_the_xray_sdk() -> None:
    code = (
        "import os, sys; os.environ['POWERTOOLS_TRACE_DISABLED'] = 'true'\n"
        "from feedsync import tracing\n"
        "tracing.capture_lambda_handler(lambda e, c: None)\n"
        "print('aws_xray_sdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
