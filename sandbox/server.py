"""The sandbox's HTTP core: one loopback server, routes, recorded requests, injected faults.

Stand-ins (Adobe, Marketo) register routes; tests read ``received`` to assert on what was sent
and call ``inject`` to make the next matching call fail the way real services fail.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    target: str = ""  # the request line's target, as sent (path and query)
    received_at: float = 0.0  # epoch seconds when the request line arrived

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body)

    def multipart(self) -> dict[str, tuple[str | None, bytes]]:
        """Form fields as name -> (filename, bytes); raises HttpError on a bad body."""
        kind = self.header("content-type")
        if not kind.startswith("multipart/form-data"):
            raise HttpError(400, {"error_code": "400", "message": "expected multipart/form-data"})
        if "boundary=" not in kind:
            raise HttpError(
                400, {"error_code": "400", "message": "multipart body without a boundary"}
            )
        head = f"Content-Type: {kind}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        fields: dict[str, tuple[str | None, bytes]] = {}
        if not message.is_multipart():
            raise HttpError(400, {"error_code": "400", "message": "malformed multipart body"})
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                raise HttpError(
                    400, {"error_code": "400", "message": "multipart part without a name"}
                )
            payload = part.get_payload(decode=True)
            fields[str(name)] = (
                part.get_filename(),
                payload if isinstance(payload, bytes) else b"",
            )
        if not fields:
            raise HttpError(
                400,
                {"error_code": "400", "message": "multipart body holds no part (wrong boundary?)"},
            )
        return fields


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Response:
        return cls(
            status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers}
        )

    @classmethod
    def xml(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), {"Content-Type": "application/xml"})


class HttpError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = Response.json(body, status, **(headers or {}))


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    kind: str  # status | lose-response | delay | malformed | hold
    times: int
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    body: Any = None
    after: bool = False  # status: handle the request first (applied, then the error: e.g. a 502)
    # hold: the request is parked (``reached`` set) until ``release`` is set, then answered -
    # a test makes two invocations overlap exactly where it wants
    reached: threading.Event | None = None
    release: threading.Event | None = None


class SandboxServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.received: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        sandbox = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, delayed ACKs add ~40 ms
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                sandbox._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def inject(self, method: str, pattern: str, kind: str, times: int = 1, **options: Any) -> None:
        """Make the next ``times`` calls matching ``method pattern`` fail as ``kind``."""
        with self.lock:
            self.faults.append(Fault(method, re.compile(pattern), kind, times, **options))

    def requests_to(self, method: str, pattern: str) -> list[Request]:
        rx = re.compile(pattern)
        with self.lock:
            return [r for r in self.received if r.method == method and rx.search(r.path)]

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.pattern.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _dispatch(self, raw: BaseHTTPRequestHandler) -> None:
        arrived = time.time()
        parts = urlsplit(raw.path)
        length = int(raw.headers.get("Content-Length") or 0)
        body = raw.rfile.read(length) if length else b""
        request = Request(
            raw.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in raw.headers.items()},
            body,
            raw.path,
            arrived,
        )
        with self.lock:
            self.received.append(request)
        fault = self._take_fault(raw.command, parts.path)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "hold" and fault.release is not None:
            if fault.reached is not None:
                fault.reached.set()
            fault.release.wait(60)
        if fault is not None and fault.kind == "status":
            if fault.after:
                self._handle(request)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body_value = fault.body or {"error_code": str(fault.status), "message": "injected"}
            self._write(raw, Response.json(body_value, fault.status, **headers))
            return
        if fault is not None and fault.kind == "malformed":
            self._write(raw, Response(200, b"<html>gateway says hi", {"Content-Type": "text/html"}))
            return
        response = self._handle(request)
        if fault is not None and fault.kind == "lose-response":
            raw.close_connection = True  # handled, but the client never hears back
            return
        self._write(raw, response)

    def _handle(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            if method != request.method:
                continue
            match = pattern.match(request.path)
            if match:
                try:
                    return handler(request, match)
                except HttpError as exc:
                    return exc.response
        return Response.json(
            {"error_code": "404", "message": f"no route {request.method} {request.path}"}, 404
        )

    @staticmethod
    def _write(raw: BaseHTTPRequestHandler, response: Response) -> None:
        raw.send_response(response.status)
        for name, value in response.headers.items():
            raw.send_header(name, value)
        raw.send_header("Content-Length", str(len(response.body)))
        raw.end_headers()
        raw.wfile.write(response.body)
