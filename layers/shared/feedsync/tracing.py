"""X-Ray for the handlers, paid for only when it is on.

Powertools' ``Tracer()`` imports ``aws_xray_sdk`` even when tracing is disabled, which is most of
a handler's cold start beyond boto3's (measured by ``bench/bench_cold_start.py``). With
``POWERTOOLS_TRACE_DISABLED=true`` (the template's ``Tracing=false``) the handler is returned as
it is and the SDK is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar, cast

Handler = TypeVar("Handler", bound=Callable[..., object])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in ("1", "true")


def capture_lambda_handler(handler: Handler) -> Handler:
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return cast(Handler, Tracer().capture_lambda_handler(handler))
