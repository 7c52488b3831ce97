"""Adobe Experience Platform: Batch Ingestion, Catalog, Schema Registry, Dataset Service.

From AdobeDocs/experience-platform-apis ``static/swagger-specs/``:

- ``batch-ingestion.yaml``: ``createBatch`` POST /data/foundation/import/batches (datasetId,
  inputFormat, externalId: "a client supplied batch identifier, expected to be unique within
  your organization"); ``uploadSmallFile`` PUT .../batches/{batchId}/datasets/{datasetId}/files/
  {filePath} as ``application/octet-stream`` ("a size threshold of 256MB"); ``completeBatch`` POST
  .../batches/{batchId}?action=COMPLETE.
- ``catalog.yaml``: ``retrieveBatch`` GET /data/foundation/catalog/batches/{id} (the answer is
  keyed by the batch id: status, errors, failedRecordCount, metrics); ``listBatches`` filters on
  ``externalId`` and ``dataSet``; ``retrieveDataset``, ``listDatasets``, ``createDataset``.
- ``schema-registry.yaml``: schemas, field groups and descriptors under /tenant.
- ``access-control.yaml``: ``listEffectiveAclPolicies`` POST
  /data/foundation/access-control/acl/effective-policies (a JSON array of
  ``/permissions/{name}`` and ``/resource-types/{name}``; the answer's ``policies`` holds those
  active for the caller in the sandbox, "*" for a permission; the others are left out).

Every call carries ``Authorization``, ``x-api-key``, ``x-gw-ims-org-id`` and
``x-sandbox-name``. Creating a batch is not idempotent: after a lost answer the batch is looked
up by its ``externalId`` (``find_batch``), never created blindly again. Completing is safe to
repeat (a batch already completed answers as such), uploading a file replaces the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from feedsync.adobe.errors import AdobeApiError, json_body
from feedsync.adobe.session import AdobeSession

SERVICE = "Adobe Experience Platform"
# uploadSmallFile: "a size threshold of 256MB" (larger files go in parts): cut with a margin
# under both 256 MB and 256 MiB, as the JSON Lines of a file never split a record
MAX_FILE_BYTES = 240 * 1024 * 1024
XED = "application/vnd.adobe.xed"
# schema-registry.yaml, descriptors: application/vnd.adobe.xdm+json groups descriptors by @type;
# only the -v2 form answers a paged ``results`` array
DESCRIPTORS_V2 = "application/vnd.adobe.xdm-v2+json"
MAX_PAGES = 1_000  # a listing that never ends is an error, not a hang


class AepClient:
    def __init__(self, session: AdobeSession, sandbox: str) -> None:
        self.session = session
        self.sandbox = sandbox

    def _call(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> Any:
        headers = {
            "x-gw-ims-org-id": self.session.credentials.org_id,
            "x-sandbox-name": self.sandbox,
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        safe = method in ("GET", "HEAD") if idempotent is None else idempotent
        response = self.session.request(
            SERVICE, method, f"{self.session.endpoints.platform}/{path.lstrip('/')}",
            idempotent=safe, headers=headers, **kwargs,
        )  # fmt: skip
        if not response.content:
            return {}
        return json_body(SERVICE, response)

    # -- Batch Ingestion ----------------------------------------------------------------
    def create_batch(self, dataset_id: str, external_id: str) -> dict[str, Any]:
        body = {
            "datasetId": dataset_id,
            "inputFormat": {"format": "json"},
            "externalId": external_id,
        }
        answer: dict[str, Any] = self._call(
            "POST", "data/foundation/import/batches", json=body, idempotent=False
        )
        return answer

    def upload_file(self, batch_id: str, dataset_id: str, name: str, data: bytes) -> None:
        """PUT replaces the file: repeating it after a lost answer is harmless."""
        path = (
            f"data/foundation/import/batches/{batch_id}/datasets/{dataset_id}/files/{quote(name)}"
        )
        self._call("PUT", path, data=data, idempotent=True,
                   headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    def complete_batch(self, batch_id: str) -> None:
        """Signals the batch is whole. Adobe documents a repeat as harmless, but a lost answer
        is still looked up (``find_batch``) rather than repeated: one completion per batch."""
        self._call("POST", f"data/foundation/import/batches/{batch_id}", idempotent=False,
                   params={"action": "COMPLETE"})  # fmt: skip

    # -- Catalog ------------------------------------------------------------------------
    def batch(self, batch_id: str) -> dict[str, Any]:
        body = self._call("GET", f"data/foundation/catalog/batches/{batch_id}")
        found = body.get(batch_id) if isinstance(body, dict) else None
        if found is None and isinstance(body, dict) and len(body) == 1:
            found = next(iter(body.values()))
        return dict(found or {})

    def find_batch(self, dataset_id: str, external_id: str) -> tuple[str, dict[str, Any]] | None:
        body = self._call("GET", "data/foundation/catalog/batches",
                          params={"externalId": external_id, "dataSet": dataset_id})  # fmt: skip
        for batch_id, batch in (body or {}).items():
            if isinstance(batch, dict) and batch.get("externalId") == external_id:
                return batch_id, batch
        return None

    # -- Access Control -----------------------------------------------------------------
    def effective_policies(self, paths: list[str]) -> dict[str, list[str]]:
        """Of ``paths``, those the credential holds in the sandbox, with their actions."""
        body = self._call("POST", "data/foundation/access-control/acl/effective-policies",
                          json=paths, idempotent=True)  # fmt: skip
        policies = body.get("policies") if isinstance(body, dict) else None
        return {str(k): list(v) for k, v in (policies or {}).items() if isinstance(v, list)}

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        body = self._call("GET", f"data/foundation/catalog/dataSets/{dataset_id}")
        return dict(body.get(dataset_id) or next(iter(body.values()), {})) if body else {}

    def datasets_named(self, name: str) -> dict[str, Any]:
        body = self._call("GET", "data/foundation/catalog/dataSets", params={"name": name})
        return {
            k: v for k, v in (body or {}).items() if isinstance(v, dict) and v.get("name") == name
        }

    def create_dataset(self, name: str, schema_id: str) -> str:
        schema = {"id": schema_id, "contentType": f"{XED}+json;version=1"}
        body = {"name": name, "schemaRef": schema}
        answer = self._call("POST", "data/foundation/catalog/dataSets", json=body, idempotent=False)
        refs = answer if isinstance(answer, list) else []
        return str(refs[0]).rsplit("/", 1)[-1] if refs else ""

    # -- Data Access --------------------------------------------------------------------
    def failed_records(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The records Platform refused in a partly ingested batch (data-access.yaml
        ``retrieveFailedBatch``: the failed files listed 100 a page, each downloaded with
        ``path``), as JSON objects, each with its ``_errors``."""
        path = f"data/foundation/export/batches/{batch_id}/failed"
        for item in self._paged(path, {"limit": 100}, "data"):
            name = str(item.get("name") or "")
            if not name:
                continue
            response = self.session.request(
                SERVICE, "GET", f"{self.session.endpoints.platform}/{path}",
                idempotent=True, params={"path": name},
                headers={"x-gw-ims-org-id": self.session.credentials.org_id,
                         "x-sandbox-name": self.sandbox},
            )  # fmt: skip
            yield from _json_records(response.content)

    def _paged(
        self, path: str, params: dict[str, Any], key: str, headers: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``_links.next.href`` (Platform's paging, in the
        Data Access and Schema Registry specs) to the end."""
        for _ in range(MAX_PAGES):
            body = self._call("GET", path, params=params, headers=headers or {})
            if not isinstance(body, dict):
                return
            yield from (i for i in body.get(key) or [] if isinstance(i, dict))
            following = ((body.get("_links") or {}).get("next") or {}).get("href")
            if not following:
                return
            parts = urlsplit(str(following))
            path, params = parts.path.lstrip("/"), dict(parse_qsl(parts.query))
        raise AdobeApiError(SERVICE, f"{path}: more than {MAX_PAGES} pages")

    # -- Schema Registry ----------------------------------------------------------------
    def tenant_list(self, kind: str) -> list[dict[str, Any]]:
        """``kind``: schemas, fieldgroups (Accept ...xed-id+json: ids and titles) or
        descriptors (the -v2 form: the descriptors themselves as ``results``), every page."""
        accept = DESCRIPTORS_V2 if kind == "descriptors" else f"{XED}-id+json"
        path = f"data/foundation/schemaregistry/tenant/{kind}"
        return list(self._paged(path, {}, "results", {"Accept": accept}))

    def tenant_get(self, kind: str, item_id: str) -> dict[str, Any]:
        # a descriptor is read with the unversioned xdm type (schema-registry.yaml
        # getDescriptor); schemas and field groups with a versioned xed one (allOf keeps $refs)
        accept = "application/vnd.adobe.xdm+json" if kind == "descriptors" else (
            f"{XED}+json; version=1")  # fmt: skip
        body: dict[str, Any] = self._call(
            "GET",
            f"data/foundation/schemaregistry/tenant/{kind}/{quote(item_id, safe='')}",
            headers={"Accept": accept},
        )
        return body

    def tenant_create(self, kind: str, definition: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._call(
            "POST", f"data/foundation/schemaregistry/tenant/{kind}", json=definition,
            idempotent=False,
        )  # fmt: skip
        return body

    def tenant_patch(self, kind: str, item_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """updateFieldGroup and kin: a JSON Patch (additive changes only: schema evolution)."""
        body: dict[str, Any] = self._call(
            "PATCH", f"data/foundation/schemaregistry/tenant/{kind}/{quote(item_id, safe='')}",
            json=ops, idempotent=True,
        )  # fmt: skip
        return body

    def tenant_id(self) -> str:
        """The organisation's tenant namespace (``_acme``), from the Schema Registry stats."""
        body = self._call("GET", "data/foundation/schemaregistry/stats")
        return str(body.get("tenantId") or "") if isinstance(body, dict) else ""


def _json_records(raw: bytes) -> Iterator[dict[str, Any]]:
    """A failed-records file: JSON Lines (what the batch was sent as) or one JSON array."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("["):
        items = json.loads(text)
        yield from (i for i in items if isinstance(i, dict))
        return
    for line in text.splitlines():
        if line.strip():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line Platform could not parse either: nobody to name
            if isinstance(item, dict):
                yield item
