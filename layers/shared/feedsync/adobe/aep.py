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

Every call carries ``Authorization``, ``x-api-key``, ``x-gw-ims-org-id`` and
``x-sandbox-name``. Creating a batch is not idempotent: after a lost answer the batch is looked
up by its ``externalId`` (``find_batch``), never created blindly again. Completing is safe to
repeat (a batch already completed answers as such), uploading a file replaces the file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from feedsync.adobe.errors import json_body
from feedsync.adobe.session import AdobeSession

SERVICE = "Adobe Experience Platform"
MAX_FILE_BYTES = 256 * 1024 * 1024  # uploadSmallFile: larger files are uploaded in parts
XED = "application/vnd.adobe.xed"


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

    # -- Schema Registry ----------------------------------------------------------------
    def tenant_list(self, kind: str) -> list[dict[str, Any]]:
        """``kind``: schemas, fieldgroups (Accept ...xed-id+json: ids and titles) or
        descriptors (Accept application/vnd.adobe.xdm+json: the descriptors themselves)."""
        accept = "application/vnd.adobe.xdm+json" if kind == "descriptors" else f"{XED}-id+json"
        body = self._call("GET", f"data/foundation/schemaregistry/tenant/{kind}",
                          headers={"Accept": accept})  # fmt: skip
        return list(body.get("results", [])) if isinstance(body, dict) else []

    def tenant_get(self, kind: str, item_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call(
            "GET",
            f"data/foundation/schemaregistry/tenant/{kind}/{quote(item_id, safe='')}",
            headers={"Accept": f"{XED}+json; version=1"},  # allOf keeps its $refs
        )
        return body

    def tenant_create(self, kind: str, definition: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._call(
            "POST", f"data/foundation/schemaregistry/tenant/{kind}", json=definition,
            idempotent=False,
        )  # fmt: skip
        return body

    def tenant_id(self) -> str:
        """The organisation's tenant namespace (``_acme``), from the Schema Registry stats."""
        body = self._call("GET", "data/foundation/schemaregistry/stats")
        return str(body.get("tenantId") or "") if isinstance(body, dict) else ""
