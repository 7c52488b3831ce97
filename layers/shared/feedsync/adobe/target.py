"""Adobe Target: admin API (versioned media types), profile API token, bulk profile update v2.

Bulk files are keyed by ``thirdPartyId`` (the CRM id) or ``pcId`` (Target's own id) - never by
the Experience Cloud id. Values are URL-encoded; a file is under 50 MB and at most 500,000 rows.
"""

from __future__ import annotations

import csv
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from requests import Response

from feedsync.adobe.errors import AdobeApiError, json_body, raise_for_error
from feedsync.adobe.session import AdobeSession
from feedsync.errors import OutcomeUnknownError
from feedsync.secret import Secret
from feedsync.tokens import AccessToken, TokenCache

SERVICE = "Adobe Target"
MAX_BATCH_BYTES = 50 * 1024 * 1024
MAX_BATCH_ROWS = 500_000
KEY_COLUMNS = ("thirdPartyId", "pcId")
ADMIN_VERSIONS = {"activities": "v3", "offers": "v2", "audiences": "v3", "batch": "v1"}


def media_type(version: str) -> str:
    return f"application/vnd.adobe.target.{version}+json"


class BatchFileWriter:
    """One bulk profile file: ``batch=<key>,<attr>...`` then URL-encoded CSV rows."""

    def __init__(
        self,
        attributes: Sequence[str],
        key: str = "thirdPartyId",
        max_bytes: int = MAX_BATCH_BYTES,
        max_rows: int = MAX_BATCH_ROWS,
    ) -> None:
        if key not in KEY_COLUMNS:
            raise ValueError(f"batch key {key!r}: Target takes thirdPartyId or pcId")
        if not attributes:
            raise ValueError("a batch file needs at least one profile attribute")
        header = "batch=" + ",".join([key, *(quote(a, safe="") for a in attributes)]) + "\n"
        self.attributes = tuple(attributes)
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self._parts = [header.encode()]
        self.size = len(self._parts[0])
        self.rows = 0

    def add(self, key: str, values: Mapping[str, str]) -> bool:
        """False when the row would break a limit: start another file."""
        if not key:
            raise ValueError("a batch row needs its key value")
        cells = [quote(str(key), safe="")]
        cells += [quote(str(values.get(a, "")), safe="") for a in self.attributes]
        line = (",".join(cells) + "\n").encode()
        if self.rows and (self.rows >= self.max_rows or self.size + len(line) >= self.max_bytes):
            return False
        self._parts.append(line)
        self.size += len(line)
        self.rows += 1
        return True

    def finish(self) -> bytes:
        return b"".join(self._parts)


def write_batches(
    attributes: Sequence[str],
    rows: Iterable[tuple[str, Mapping[str, str]]],
    key: str = "thirdPartyId",
    max_rows: int = MAX_BATCH_ROWS,
) -> list[bytes]:
    files: list[bytes] = []
    writer = BatchFileWriter(attributes, key, max_rows=max_rows)
    for row_key, values in rows:
        if not writer.add(row_key, values):
            files.append(writer.finish())
            writer = BatchFileWriter(attributes, key, max_rows=max_rows)
            writer.add(row_key, values)
    if writer.rows:
        files.append(writer.finish())
    return files


# batchStatus states (AdobeDocs/target-dev.en help/dev/administer/profile-api/
# profile-bulk-api.md, "Default batch status response").
COMPLETE, INCOMPLETE, STUCK = "complete", "incomplete", "stuck"
DETAIL_FIELDS = ("consumedCount", "successfulUpdates", "profilesNotFound", "failedUpdates")
PROFILE_TOKEN_CAP = 3600.0  # the spec gives expiresIn no unit: never trust it for longer


def batches_from_file(data: bytes, source: str = "file") -> list[bytes]:
    """Bulk profile files from a CSV (``thirdPartyId`` or ``pcId`` first, attribute columns
    after; values URL-encoded here) or from a ready ``batch=`` file (already encoded), split
    under the documented limits (profile-bulk-api.md: < 50 MB and <= 500,000 rows a batch)."""
    text = data.decode("utf-8-sig")
    if text.startswith("batch="):
        return _split_ready(text, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or header[0] not in KEY_COLUMNS:
        raise ValueError(f"{source}: the first column must be thirdPartyId or pcId")
    if len(header) < 2:
        raise ValueError(f"{source}: add at least one profile attribute column")
    rows = []
    for number, cells in enumerate(reader, start=2):
        if len(cells) != len(header):
            raise ValueError(
                f"{source}: line {number} has {len(cells)} fields, header {len(header)}"
            )
        rows.append((cells[0], dict(zip(header[1:], cells[1:], strict=True))))
    return write_batches(header[1:], rows, key=header[0])


def _split_ready(text: str, source: str) -> list[bytes]:
    lines = text.splitlines()
    header = lines[0][len("batch=") :].split(",")
    if header[0] not in KEY_COLUMNS:
        raise ValueError(f"{source}: the first column must be thirdPartyId or pcId")
    files: list[bytes] = []
    head = (lines[0] + "\n").encode()
    current, size = [head], len(head)
    for line in (f"{x}\n".encode() for x in lines[1:] if x):
        if len(current) > 1 and (
            len(current) > MAX_BATCH_ROWS or size + len(line) >= MAX_BATCH_BYTES
        ):
            files.append(b"".join(current))
            current, size = [head], len(head)
        current.append(line)
        size += len(line)
    if len(current) > 1:
        files.append(b"".join(current))
    return files


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    status: str
    size: int | None
    raw: dict[str, str]

    @property
    def state(self) -> str:
        """complete, incomplete or stuck; anything else Target may add counts as incomplete."""
        value = self.status.lower()
        return value if value in (COMPLETE, STUCK) else INCOMPLETE

    @property
    def finished(self) -> bool:
        return self.state != INCOMPLETE

    @property
    def details(self) -> dict[str, int]:
        """The showDetails=true figures Target returned (empty without them)."""
        return {k: int(v) for k, v in self.raw.items() if k in DETAIL_FIELDS and v.isdigit()}


def _xml_fields(text: str, what: str) -> dict[str, str]:
    try:
        root = ET.fromstring(text)  # noqa: S314 - trusted Adobe endpoint, no DTDs used
    except ET.ParseError:
        raise AdobeApiError(SERVICE, f"{what}: expected XML, got {text[:120]!r}") from None
    return {child.tag: (child.text or "").strip() for child in root}


class TargetClient:
    def __init__(self, session: AdobeSession, tenant: str, client_code: str) -> None:
        if not tenant or not client_code:
            raise ValueError("Target needs the tenant (admin API) and client code (edge)")
        self.session = session
        self.tenant = tenant
        self.client_code = client_code
        self.profile_tokens = TokenCache(self._fetch_profile_token)

    # admin API
    def _admin(self, method: str, path: str, version: str, **kwargs: Any) -> Any:
        url = f"{self.session.endpoints.target}/{self.tenant}/target/{path.lstrip('/')}"
        headers = {"Accept": media_type(version)}
        if "json" in kwargs:
            # the batch operation takes plain JSON (admin-api.json, processBatchOperations);
            # every other body is the versioned media type
            headers["Content-Type"] = "application/json" if path == "batch" else media_type(version)
        response = self.session.request(
            SERVICE, method, url, idempotent=method == "GET", headers=headers, **kwargs
        )
        return json_body(SERVICE, response)

    def _list(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self._admin(
                "GET", kind, ADMIN_VERSIONS[kind], params={"limit": limit, "offset": offset}
            )
            page = list(body.get(kind, []))
            items.extend(page)
            total = int(body.get("total", len(items)))
            offset += len(page)
            if not page or offset >= total:
                return items

    def activities(self) -> list[dict[str, Any]]:
        return self._list("activities")

    def offers(self) -> list[dict[str, Any]]:
        return self._list("offers")

    def audiences(self) -> list[dict[str, Any]]:
        return self._list("audiences")

    def get(self, kind: str, item_id: str | int, activity_type: str = "") -> dict[str, Any]:
        """One activity (``activity_type`` ab/xt), offer (content/json) or audience."""
        path = f"{kind}/{activity_type + '/' if activity_type else ''}{item_id}"
        body: dict[str, Any] = self._admin("GET", path, ADMIN_VERSIONS[kind])
        return body

    def batch(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        """The admin batch endpoint (several admin calls in one request); admin-api.json
        requires the query parameters authRequestData (an object) and requestHost."""
        host = urlsplit(self.session.endpoints.target).netloc
        body: dict[str, Any] = self._admin(
            "POST", "batch", ADMIN_VERSIONS["batch"], json={"operations": operations},
            params={"authRequestData": "{}", "requestHost": host},
        )  # fmt: skip
        return body

    # profile APIs
    def _fetch_profile_token(self) -> AccessToken:
        """admin-api.json ``requestAuthorizationToken``: POST authentication/token with
        ``authorizationScope=profile_api``, answered ``{accessToken, tokenType, scope,
        expiresIn}``."""
        body = self._admin(
            "POST", "authentication/token", "v1", params={"authorizationScope": "profile_api"}
        )
        token = body.get("accessToken") if isinstance(body, dict) else None
        if not token:
            raise AdobeApiError(SERVICE, "the profile API token answer lacks 'accessToken'")
        try:
            lifetime = min(float(body.get("expiresIn") or PROFILE_TOKEN_CAP), PROFILE_TOKEN_CAP)
        except (TypeError, ValueError):
            lifetime = PROFILE_TOKEN_CAP
        return AccessToken(Secret(str(token)), time.time() + lifetime, lifetime)

    def profile_token(self) -> Secret:
        return self.profile_tokens.token()

    def _profile_call(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> Response:
        """A profile API call with ``Authorization: Bearer <profile token>``; one refresh on 401."""
        headers = dict(kwargs.pop("headers", {}))
        for attempt in (0, 1):
            token = self.profile_token()
            headers["Authorization"] = f"Bearer {token.reveal()}"
            response = self.session.transport.send(
                method, url, idempotent=idempotent, headers=headers, **kwargs
            )
            if response.status_code != 401 or attempt == 1:
                return response
            self.profile_tokens.invalidate(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _edge(self, path: str) -> str:
        base = self.session.endpoints.target_edge_for(self.client_code)
        return f"{base}/{path.lstrip('/')}"

    def batch_update(self, data: bytes) -> str:
        """Submit a bulk profile file; returns the batchStatus URL to poll."""
        if not data.startswith(b"batch="):
            raise ValueError("a bulk profile file starts with 'batch='")
        if len(data) >= MAX_BATCH_BYTES:
            raise AdobeApiError(
                SERVICE, f"batch file is {len(data)} bytes; limit {MAX_BATCH_BYTES}"
            )
        url = self._edge(f"m2/{self.client_code}/v2/profile/batchUpdate")
        try:
            response = self._profile_call(
                "POST",
                url,
                idempotent=False,
                data=data,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except OutcomeUnknownError as exc:
            # Target has no lookup by content; a re-sent v2 batch rewrites the same attribute
            # values, so the caller may retry, but it must know the first one may have landed.
            raise OutcomeUnknownError(
                SERVICE,
                "bulk profile update answer lost; re-sending writes the same values again",
                operation=exc.operation,
            ) from None
        fields = _xml_fields(response.text, "batchUpdate")
        if response.status_code >= 400 or fields.get("success", "true").lower() != "true":
            raise AdobeApiError(
                SERVICE,
                fields.get("message") or response.text[:200],
                status=response.status_code,
                operation="POST batchUpdate",
            )
        status_url = fields.get("batchStatus", "")
        if not status_url:
            raise AdobeApiError(SERVICE, "batchUpdate answer lacks a batchStatus URL")
        return status_url

    def batch_status(self, status_url: str, details: bool = False) -> BatchStatus:
        parts = urlsplit(status_url)
        if parts.scheme not in ("http", "https") or "batchStatus" not in parts.path:
            raise ValueError(f"{status_url!r} is not a Target batchStatus URL")
        params = {"showDetails": "true"} if details else None
        response = self.session.transport.send("GET", status_url, idempotent=True, params=params)
        raise_for_error(SERVICE, response)
        fields = _xml_fields(response.text, "batchStatus")
        size = fields.get("batchSize")
        return BatchStatus(
            batch_id=fields.get("batchId", ""),
            status=fields.get("status", "unknown"),
            size=int(size) if size and size.isdigit() else None,
            raw=fields,
        )

    def update_profile(
        self, attributes: Mapping[str, str], *, third_party_id: str = "", tnt_id: str = ""
    ) -> None:
        """Single profile update by third-party id or tnt id (mboxPC)."""
        if bool(third_party_id) == bool(tnt_id):
            raise ValueError("give exactly one of third_party_id or tnt_id")
        params = {f"profile.{k}": v for k, v in attributes.items()}
        params["mbox3rdPartyId" if third_party_id else "mboxPC"] = third_party_id or tnt_id
        url = self._edge(f"m2/{self.client_code}/profile/update")
        response = self._profile_call(
            "GET",
            url,
            idempotent=True,
            params=params,  # same values again: same result
        )
        raise_for_error(SERVICE, response)

    def get_profile(self, *, third_party_id: str = "", tnt_id: str = "") -> dict[str, Any]:
        if bool(third_party_id) == bool(tnt_id):
            raise ValueError("give exactly one of third_party_id or tnt_id")
        path = (
            f"thirdPartyId/{quote(third_party_id, safe='')}"
            if third_party_id
            else quote(tnt_id, safe="")
        )
        response = self._profile_call(
            "GET",
            self._edge(f"rest/v1/profiles/{path}"),
            idempotent=True,
            params={"client": self.client_code},
        )
        body: dict[str, Any] = json_body(SERVICE, raise_for_error(SERVICE, response))
        return body
