"""The sandbox against the same spec table: a request that breaks a row's rule (a required
header, query parameter, form field, media type or Accept left out) is refused, so the stand-in
cannot accept what Adobe refuses. Each request is one the clients sent (and the sandbox took),
replayed with one rule broken."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import requests

from sandbox.run import Sandbox
from sandbox.server import Request
from tests.conformance.spec import operation_for
from tests.conformance.test_clients import (
    _exercise_aep,
    _exercise_analytics,
    _exercise_bdia,
    _exercise_cja,
    _exercise_marketo,
    _exercise_target,
)


def _refused(
    box: Sandbox, request: Request, *, headers: dict[str, str], query: str, body: bytes
) -> tuple[bool, int]:
    url = f"{box.url}{request.path}" + (f"?{query}" if query else "")
    answer = requests.request(request.method, url, headers=headers, data=body, timeout=10)
    if answer.status_code >= 400:
        return True, answer.status_code
    try:  # Marketo refuses with HTTP 200 and success: false (marketo-apis error-codes)
        refused = answer.json().get("success") is False
    except (ValueError, AttributeError):
        refused = False
    return refused, answer.status_code


def _broken_variants(request: Request) -> list[tuple[str, dict[str, str], str, bytes]]:
    op = operation_for(request)
    assert op is not None
    headers = {k: v for k, v in request.headers.items() if k not in ("content-length", "host")}
    query = request.target.partition("?")[2]
    out = []
    for name in op.headers:
        out.append(
            (
                f"without header {name}",
                {k: v for k, v in headers.items() if k != name},
                query,
                request.body,
            )
        )
    params = parse_qsl(query, keep_blank_values=True)
    for name in op.query:
        rest = urlencode([(k, v) for k, v in params if k != name])
        out.append((f"without query {name}", headers, rest, request.body))
    for name, _ in op.fixed:
        wrong = urlencode([(k, "wrong" if k == name else v) for k, v in params])
        out.append((f"{name}=wrong", headers, wrong, request.body))
    if op.accept:
        out.append(
            (
                "Accept: application/json",
                {**headers, "accept": "application/json"},
                query,
                request.body,
            )
        )
    if op.content_type == "application/json":
        out.append(
            (
                "Content-Type: text/plain",
                {**headers, "content-type": "text/plain"},
                query,
                request.body,
            )
        )
    for name in op.form:
        form = urlencode(
            [
                (k, v)
                for k, v in parse_qsl(request.body.decode(), keep_blank_values=True)
                if k != name
            ]
        )
        out.append((f"without form field {name}", headers, query, form.encode()))
    if op.body_prefix:
        out.append(("body without batch=", headers, query, request.body[len(op.body_prefix) :]))
    return out


def test_the_sandbox_refuses_what_the_specs_refuse(sandbox: Sandbox) -> None:
    sandbox.adobe.bdia_interval = sandbox.adobe.bdia_group_interval = 0.0
    for exercise in (
        _exercise_analytics,
        _exercise_bdia,
        _exercise_target,
        _exercise_cja,
        _exercise_aep,
        _exercise_marketo,
    ):
        exercise(sandbox)
    seen: dict[str, Request] = {}
    for request in sandbox.server.received:
        op = operation_for(request)
        if op is not None and op.name not in seen:
            seen[op.name] = request
    accepted = []
    for name, request in seen.items():
        for what, headers, query, body in _broken_variants(request):
            refused, status = _refused(sandbox, request, headers=headers, query=query, body=body)
            if not refused:
                accepted.append(f"{name} {what}: HTTP {status}")
    assert accepted == [], "\n".join(accepted)
