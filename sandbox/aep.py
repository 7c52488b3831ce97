"""Adobe stand-in, Experience Platform: Batch Ingestion, Catalog, Schema Registry and Dataset
Service, written from AdobeDocs/experience-platform-apis ``static/swagger-specs/*.yaml`` (each
route names its operation), and CJA's ``GET /data/connections`` (cja-apis static/swagger.json).

Every Platform call needs ``Authorization`` (a token IMS issued), ``x-api-key``,
``x-gw-ims-org-id`` (the org) and ``x-sandbox-name`` (a known sandbox). Records are validated
against the dataset's schema when the batch completes: a line that is not JSON, lacks the
identity, names a field the schema does not have or holds a value of the wrong type is a failed
record (``metrics.failedRecordCount``, ``errors``, and the record itself with its ``_errors``
in the Data Access API's failed files); a batch with no good record fails, one with some is a
partial ingestion (success).

Scripting: ``fail_batches`` (externalId substrings whose batches end ``failed``), ``fail_next``,
``hold_batches`` (batches stay ``processing``), ``end_batches`` (aborted, abandoned, deleted,
stalled), ``draw`` (every documented status word at random: active for success, staging,
queued, loaded, retrying, inactive while processing), ``datasets``/``schemas`` (what exists),
``connections`` (CJA connections and their datasets). Lost answers, 429 and 5xx come from
``SandboxServer.inject``. Plain attributes for tests: ``batches``, ``files``, ``completes``.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote

from sandbox.adobe import AdobeStandIn, _error
from sandbox.server import Request, Response

IMPORT = r"/data/foundation/import"
CATALOG = r"/data/foundation/catalog"
REGISTRY = r"/data/foundation/schemaregistry"
MAX_SMALL_FILE = 256 * 1024 * 1024  # uploadSmallFile: "a size threshold of 256MB"
PROFILE = "https://ns.adobe.com/xdm/context/profile"
RECORD = "https://ns.adobe.com/xdm/data/record"
# catalog.yaml batchStatus: after COMPLETE a batch is processed, then success or failed
PENDING = ("staged", "processing")


# schema-registry.yaml: the standard behaviours a class builds on
BEHAVIOURS = (
    RECORD,
    "https://ns.adobe.com/xdm/data/time-series",
    "https://ns.adobe.com/xdm/data/adhoc",
)


def _json_add(document: dict[str, Any], pointer: str, value: Any) -> None:
    """RFC 6902 ``add`` at a JSON Pointer (the parents must exist)."""
    names = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")]
    node: Any = document
    for name in names[:-1]:
        if not isinstance(node, dict) or name not in node:
            raise _error(400, "400", f"path {pointer}: {name} does not exist")
        node = node[name]
    node[names[-1]] = value


# catalog.yaml batchStatus words a batch may say while it is processed (the guides: Staging
# means "being processed"; a batch is "inactive" until it reaches its final state)
IN_BETWEEN = ("staging", "queued", "loaded", "retrying", "inactive")


def _failed_record(line: str, problem: str) -> bytes:
    """A refused record as the Data Access failed files carry it: the record with ``_errors``."""
    try:
        record = json.loads(line)
    except ValueError:
        record = {"_corrupt_record": line}
    if not isinstance(record, dict):
        record = {"_corrupt_record": line}
    record["_errors"] = [{"code": "INGEST-1212-400", "message": problem}]
    return (json.dumps(record) + "\n").encode()


def _ms() -> int:
    return int(time.time() * 1000)


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """XDM properties -> {dotted path: type} of the leaves."""
    out: dict[str, str] = {}
    for name, spec in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if spec.get("type") == "object" or "properties" in spec:
            out.update(_leaves(spec, path))
        else:
            out[path] = str(spec.get("type", "string"))
    return out


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in record.items():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


_TYPES = {"string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,)}


class PlatformStandIn:
    def __init__(self, adobe: AdobeStandIn, sandboxes: tuple[str, ...] = ("prod",)) -> None:
        self.adobe = adobe
        self.sandboxes = set(sandboxes)
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.tenant = adobe.account.tenant
        self.schemas: dict[str, dict[str, Any]] = {}  # $id -> definition (+ "fields", "identity")
        self.fieldgroups: dict[str, dict[str, Any]] = {}
        self.descriptors: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, dict[str, Any]] = {}  # the tenant's classes (a lookup's)
        self.datasets: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, bytes]] = {}  # batch id -> file path -> bytes
        self.completes: dict[str, int] = {}  # batch id -> COMPLETE calls
        self.fail_batches: set[str] = set()
        self.fail_next = 0  # the next N batches validated end failed
        self.hold_batches = False
        # externalId or file name substring -> the terminal state such batches end in (aborted,
        # abandoned, deleted: nothing ingested; stalled: stuck until changed)
        self.end_batches: dict[str, str] = {}
        # every documented word at random (catalog.yaml batchStatus; the guides: "Active and
        # Success are used interchangeably", Staging is "being processed"): set a Random
        self.draw: random.Random | None = None
        self.failed: dict[str, list[bytes]] = {}  # batch id -> failed records (Data Access)
        # ECID -> the error message Platform gives its record (e.g. an id Identity Service
        # refuses): a batch with such records ingests the others (partial ingestion)
        self.refuse_ids: dict[str, str] = {}
        self.list_page = 20  # Schema Registry listings: items a page unless ``limit`` says
        self.connections_page = 100  # CJA connections a page
        self.connections: list[dict[str, Any]] = []
        # Access Control: the permissions the credential's product profile grants (all of
        # feedsync's unless a test takes some away) - access-control.yaml
        self.permissions = {"manage-datasets", "manage-schemas", "view-datasets",
                            "view-schemas"}  # fmt: skip
        route = adobe.server.route
        route("POST", IMPORT + r"/batches", self.create_batch)
        route("PUT", IMPORT + r"/batches/([^/]+)/datasets/([^/]+)/files/(.+)", self.upload_file)
        route("POST", IMPORT + r"/batches/([^/]+)", self.signal_batch)
        route("GET", CATALOG + r"/batches", self.list_batches)
        route("GET", CATALOG + r"/batches/([^/]+)", self.retrieve_batch)
        route("GET", CATALOG + r"/dataSets", self.list_datasets)
        route("POST", CATALOG + r"/dataSets", self.create_dataset)
        route("GET", CATALOG + r"/dataSets/([^/]+)", self.retrieve_dataset)
        route("GET", REGISTRY + r"/stats", self.stats)
        kinds = r"(schemas|fieldgroups|descriptors|classes)"
        route("GET", REGISTRY + rf"/tenant/{kinds}", self.tenant_list)
        route("POST", REGISTRY + rf"/tenant/{kinds}", self.tenant_create)
        route("GET", REGISTRY + rf"/tenant/{kinds}/(.+)", self.tenant_get)
        route("PATCH", REGISTRY + r"/tenant/fieldgroups/(.+)", self.patch_fieldgroup)
        route(
            "POST",
            r"/data/foundation/access-control/acl/effective-policies",
            self.effective_policies,
        )
        route("GET", r"/data/connections", self.cja_connections)
        route("GET", r"/data/foundation/export/batches/([^/]+)/failed", self.failed_files)

    # -- scripting ----------------------------------------------------------------------
    def add_dataset(self, fields: dict[str, str], name: str = "feedsync CRM profile",
                    identity: str = "identityMap") -> str:  # fmt: skip
        """A profile dataset whose schema has ``fields`` (dotted path -> XDM type)."""
        schema_id = f"https://ns.adobe.com/{self.tenant}/schemas/{secrets.token_hex(8)}"
        self.schemas[schema_id] = {"$id": schema_id, "title": f"{name} schema",
                                   "fields": dict(fields), "identity": identity}  # fmt: skip
        return self._dataset(name, schema_id)

    def _dataset(self, name: str, schema_id: str) -> str:
        dataset_id = secrets.token_hex(12)
        self.datasets[dataset_id] = {"name": name, "created": _ms(),
                                     "schemaRef": {"id": schema_id,
                                                   "contentType": "application/vnd.adobe.xed+json;version=1"}}  # fmt: skip
        return dataset_id

    # -- checks every operation shares ---------------------------------------------------
    def _platform(self, request: Request) -> str:
        # every operation's parameters: Authorization, x-api-key, x-gw-ims-org-id,
        # x-sandbox-name (required)
        self.adobe._authorize(request)
        if request.header("x-gw-ims-org-id") != self.adobe.account.org_id:
            raise _error(403, "403", "x-gw-ims-org-id is missing or not your organization")
        sandbox = request.header("x-sandbox-name")
        if not sandbox:
            raise _error(400, "400", "x-sandbox-name is required")
        if sandbox not in self.sandboxes:
            raise _error(403, "403", f"sandbox {sandbox!r} not found or not allowed")
        return sandbox

    @staticmethod
    def _json_value(request: Request, empty: bytes = b"null", what: str = "") -> Any:
        """The JSON body of an operation whose media type is application/json."""
        if not request.header("content-type").startswith("application/json"):
            raise _error(415, "415", f"Content-Type must be application/json{what}")
        try:
            return json.loads(request.body or empty)
        except ValueError:
            raise _error(400, "400", "the body is not JSON") from None

    @classmethod
    def _json(cls, request: Request) -> dict[str, Any]:
        body = cls._json_value(request)
        if not isinstance(body, dict):
            raise _error(400, "400", "the body must be a JSON object")
        return body

    # -- Batch Ingestion (batch-ingestion.yaml) ------------------------------------------
    def create_batch(self, request: Request, _: re.Match[str]) -> Response:
        # createBatch: IngestBatch requires datasetId and inputFormat (format JSON|Parquet|CSV)
        self._platform(request)
        body = self._json(request)
        dataset = body.get("datasetId")
        form = str((body.get("inputFormat") or {}).get("format", "")).lower()
        if dataset not in self.datasets:
            raise _error(400, "400", f"dataset {dataset!r} not found")
        if form not in ("json", "parquet", "csv"):
            raise _error(400, "400", "inputFormat.format must be JSON, Parquet or CSV")
        with self.lock:
            batch_id = f"01J{next(self._ids):023d}"
            batch = {"id": batch_id, "status": "loading", "created": _ms(), "updated": _ms(),
                     "externalId": body.get("externalId") or batch_id,
                     "inputFormat": {"format": form}, "imsOrg": self.adobe.account.org_id,
                     "relatedObjects": [{"type": "dataSet", "id": dataset}]}  # fmt: skip
            self.batches[batch_id] = batch
            self.files[batch_id] = {}
        return Response.json(batch, status=201)

    def _batch(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise _error(404, "404", f"batch {batch_id} not found")
        return batch

    def upload_file(self, request: Request, m: re.Match[str]) -> Response:
        # uploadSmallFile: Content-Type application/octet-stream (enum); 404 batch or
        # dataset not found; 415 unsupported media type; files over 256 MB go in parts
        self._platform(request)
        if request.header("content-type") != "application/octet-stream":
            raise _error(415, "415", "the file must be sent as application/octet-stream")
        with self.lock:
            batch = self._batch(m[1])
            if batch["relatedObjects"][0]["id"] != m[2]:
                raise _error(404, "404", f"dataset {m[2]} is not this batch's dataset")
            if batch["status"] != "loading":
                raise _error(400, "400", f"batch {m[1]} is {batch['status']}: no more files")
            if len(request.body) > MAX_SMALL_FILE:
                raise _error(400, "400", "files over 256 MB are uploaded in parts")
            self.files[m[1]][unquote(m[3])] = request.body
        return Response(200, b"")

    def signal_batch(self, request: Request, m: re.Match[str]) -> Response:
        # completeBatch: action required, one of COMPLETE, ABORT, FAIL, REVERT
        self._platform(request)
        action = request.param("action")
        if action not in ("COMPLETE", "ABORT", "FAIL", "REVERT"):
            raise _error(400, "400", "action must be COMPLETE, ABORT, FAIL or REVERT")
        with self.lock:
            batch = self._batch(m[1])
            if action == "COMPLETE":
                self.completes[m[1]] = self.completes.get(m[1], 0) + 1
                if batch["status"] == "loading":
                    if not self.files[m[1]]:
                        raise _error(400, "400", "the batch has no file")
                    batch.update(status="staged", updated=_ms())
            else:
                batch.update(status="aborted" if action == "ABORT" else "failed", updated=_ms())
            return Response.json(batch)

    # -- Catalog (catalog.yaml) ----------------------------------------------------------
    def _advance(self, batch: dict[str, Any]) -> None:
        """Each look moves a completed batch on: staged -> processing -> success | failed; with
        ``draw``, any documented in-between word (staging, queued, loaded, retrying, inactive)
        may be said instead, and success may be said ``active``."""
        status = batch["status"]
        if status in IN_BETWEEN:
            batch["status"] = "processing"
        elif status == "staged":
            batch["status"] = self._word("processing", IN_BETWEEN)
        elif status == "processing" and not self.hold_batches:
            self._validate(batch)

    def _word(self, usual: str, others: tuple[str, ...]) -> str:
        if self.draw is None or self.draw.random() < 0.5:
            return usual
        return self.draw.choice(others)

    def _validate(self, batch: dict[str, Any]) -> None:
        dataset = self.datasets[batch["relatedObjects"][0]["id"]]
        schema = self.schemas[dataset["schemaRef"]["id"]]
        good, errors = 0, []
        rejects: list[bytes] = []
        row = 0
        for data in self.files[batch["id"]].values():
            for line in data.decode().splitlines():
                row += 1
                problem = self._problem(line, schema)
                if problem:
                    errors.append({"code": "INGEST-1212-400", "rows": [str(row)],
                                   "description": problem})  # fmt: skip
                    rejects.append(_failed_record(line, problem))
                else:
                    good += 1
        failed = any(s in batch["externalId"] for s in self.fail_batches) or good == 0
        if self.fail_next > 0:
            self.fail_next -= 1
            failed = True
        names = " ".join([batch["externalId"], *self.files[batch["id"]]])  # id and file names
        ended = next((v for k, v in self.end_batches.items() if k in names), None)
        status = ended or ("failed" if failed else self._word("success", ("active",)))
        # the partial-ingestion guide: the counts under ``metrics``
        batch.update(status=status, completed=_ms(), errors=errors[:100],
                     metrics={"recordCount": row, "failedRecordCount": row - good})  # fmt: skip
        if status in ("success", "active") and rejects:
            self.failed[batch["id"]] = rejects
        if failed and not errors:
            batch["errors"] = [{"code": "INGEST-500", "description": "internal ingestion error"}]

    def _problem(self, line: str, schema: dict[str, Any]) -> str:
        try:
            record = json.loads(line)
        except ValueError:
            return "not a JSON record"
        if not isinstance(record, dict):
            return "not a JSON object"
        flat = _flatten({k: v for k, v in record.items() if k != "identityMap"})
        if schema["identity"] == "identityMap":
            ids = (record.get("identityMap") or {}).get("ECID") or []
            if not ids or not ids[0].get("id"):
                return "no primary identity (identityMap.ECID)"
            if str(ids[0]["id"]) in self.refuse_ids:
                return self.refuse_ids[str(ids[0]["id"])]
        elif not flat.get(schema["identity"]):
            return f"no primary identity ({schema['identity']})"
        for path, value in flat.items():
            kind = schema["fields"].get(path)
            if kind is None:
                return f"{path} is not a field of the schema"
            if kind == "date":
                if not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
                    return f"{path}: {value!r} is not a date"
            elif not isinstance(value, _TYPES.get(kind, (str,))) or (
                kind != "boolean" and isinstance(value, bool)
            ):
                return f"{path}: {value!r} is not a {kind}"
        return ""

    def retrieve_batch(self, request: Request, m: re.Match[str]) -> Response:
        # retrieveBatch: the answer is an object keyed by the batch id
        self._platform(request)
        with self.lock:
            batch = self._batch(m[1])
            self._advance(batch)
            return Response.json({m[1]: batch})

    def ingested(self) -> list[dict[str, Any]]:
        """The records Platform holds: those of batches that ended success (or active), less
        the ones it refused (for tests: what CJA would read)."""
        out = []
        with self.lock:
            for batch_id, batch in self.batches.items():
                if batch["status"] not in ("success", "active"):
                    continue
                refused = {
                    json.dumps(
                        {k: v for k, v in json.loads(r).items() if k != "_errors"}, sort_keys=True
                    )
                    for r in self.failed.get(batch_id, [])
                }
                for data in self.files[batch_id].values():
                    for line in data.decode().splitlines():
                        record = json.loads(line)
                        if json.dumps(record, sort_keys=True) not in refused:
                            out.append(record)
        return out

    def failed_files(self, request: Request, m: re.Match[str]) -> Response:
        """data-access.yaml ``retrieveFailedBatch``: the failed files (``data``: name, length,
        ``_links.self.href``; ``_page`` limit/count, at most 100 a page); with ``path`` the
        file itself - the refused records as JSON Lines, each with ``_errors`` (code, message)."""
        self._platform(request)
        with self.lock:
            self._batch(m[1])
            rejects = self.failed.get(m[1], [])
        files = {f"failed-{n:03d}.json": b"".join(rejects[n * 50 : n * 50 + 50])
                 for n in range(-(-len(rejects) // 50))}  # fmt: skip
        wanted = request.param("path")
        if wanted:
            if wanted not in files:
                raise _error(404, "404", f"no failed file {wanted!r} in batch {m[1]}")
            return Response(200, files[wanted], {"Content-Type": "application/octet-stream"})
        items = [{"name": name, "length": str(len(data)),
                  "_links": {"self": {"href": f"{request.path}?path={name}"}}}
                 for name, data in sorted(files.items())]  # fmt: skip
        return self._page(request, items, key="data")

    def list_batches(self, request: Request, _: re.Match[str]) -> Response:
        # listBatches: filters externalId, dataSet (and others); an object keyed by id
        self._platform(request)
        external, dataset = request.param("externalId"), request.param("dataSet")
        with self.lock:
            found = {
                k: b for k, b in self.batches.items()
                if (not external or b["externalId"] == external)
                and (not dataset or b["relatedObjects"][0]["id"] == dataset)
            }  # fmt: skip
            return Response.json(found)

    def list_datasets(self, request: Request, _: re.Match[str]) -> Response:
        self._platform(request)
        name = request.param("name")
        return Response.json(
            {k: d for k, d in self.datasets.items() if not name or d["name"] == name}
        )

    def retrieve_dataset(self, request: Request, m: re.Match[str]) -> Response:
        self._platform(request)
        if m[1] not in self.datasets:
            raise _error(404, "404", f"dataset {m[1]} not found")
        return Response.json({m[1]: self.datasets[m[1]]})

    def create_dataset(self, request: Request, _: re.Match[str]) -> Response:
        # createDataset: schemaRef {id, contentType}; answers ["@/dataSets/<id>"]
        self._platform(request)
        body = self._json(request)
        schema_id = (body.get("schemaRef") or {}).get("id")
        if schema_id not in self.schemas:
            raise _error(400, "400", f"schemaRef.id {schema_id!r} is not a schema")
        with self.lock:
            dataset_id = self._dataset(str(body.get("name") or "unnamed"), schema_id)
        return Response.json([f"@/dataSets/{dataset_id}"], status=201)

    # -- Schema Registry (schema-registry.yaml) ------------------------------------------
    def stats(self, request: Request, _: re.Match[str]) -> Response:
        self._platform(request)
        return Response.json({"tenantId": self.tenant, "counts": {"schemas": len(self.schemas)}})

    def _store(self, kind: str) -> dict[str, dict[str, Any]]:
        return {"schemas": self.schemas, "fieldgroups": self.fieldgroups,
                "descriptors": self.descriptors, "classes": self.classes}[kind]  # fmt: skip

    def tenant_list(self, request: Request, m: re.Match[str]) -> Response:
        self._platform(request)
        accept = request.header("accept")
        if m[1] == "descriptors":
            return self._descriptor_list(request, accept)
        # schemas, field groups: application/vnd.adobe.xed-id+json (or xed+json); paged with
        # limit (default here: LIST_PAGE) and start, next page in _links.next.href
        if not accept.startswith("application/vnd.adobe.xed"):
            raise _error(406, "406", "Accept must be an application/vnd.adobe.xed type")
        items = [{"$id": k, "title": v.get("title"), "meta:altId": k.rsplit("/", 1)[-1],
                  "version": v.get("version", "1.0")}
                 for k, v in self._store(m[1]).items()]  # fmt: skip
        return self._page(request, items)

    def _page(
        self, request: Request, items: list[dict[str, Any]], key: str = "results"
    ) -> Response:
        """schema-registry.yaml listResponse: ``results``, ``_page`` {orderby, next, count} and
        ``_links.next`` (null on the last page); ``start`` continues after a page."""
        limit = min(500, int(request.param("limit") or self.list_page))
        start = int(request.param("start") or 0)
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        following = f"{request.path}?start={start + limit}&limit={limit}" if more else None
        return Response.json(
            {
                key: chunk,
                "_page": {"orderby": "updated", "next": following, "count": len(chunk)},
                "_links": {"next": {"href": following} if following else None},
            }
        )

    def _descriptor_list(self, request: Request, accept: str) -> Response:
        """schema-registry.yaml, listing descriptors: ``application/vnd.adobe.xdm+json`` returns
        the descriptor objects grouped by ``@type``, ``...xdm-id+json`` their ids grouped by
        ``@type``; only the ``-v2`` forms answer a paged ``results`` array."""
        items = [{"@id": k, **{f: v for f, v in d.items() if f not in ("fields", "identity")}}
                 for k, d in self.descriptors.items()]  # fmt: skip
        if accept.startswith("application/vnd.adobe.xdm-v2"):
            if "-id+json" in accept:
                items = [{"@id": i["@id"]} for i in items]
            return self._page(request, items)
        if accept.startswith("application/vnd.adobe.xdm"):
            grouped: dict[str, list[Any]] = {}
            for item in items:
                value = item["@id"] if "-id+json" in accept else item
                grouped.setdefault(str(item.get("@type")), []).append(value)
            return Response.json(grouped)
        raise _error(406, "406", "Accept must be an application/vnd.adobe.xdm type")

    def tenant_get(self, request: Request, m: re.Match[str]) -> Response:
        # a lookup's Accept must carry a version (schema-registry.yaml parameters.accept); a
        # descriptor is read with application/vnd.adobe.xdm+json, no version (getDescriptor)
        self._platform(request)
        accept = request.header("accept")
        if m[1] != "descriptors" and "version=" not in accept:
            raise _error(406, "406", "a lookup's Accept needs a version, e.g. version=1")
        if m[1] == "descriptors" and not accept.startswith("application/vnd.adobe.xdm+json"):
            raise _error(406, "406", "a descriptor is read with application/vnd.adobe.xdm+json")
        found = self._store(m[1]).get(unquote(m[2]))
        if found is None:
            raise _error(404, "404", f"{m[1]} {unquote(m[2])} not found")
        return Response.json({k: v for k, v in found.items() if k not in ("fields", "identity")})

    def tenant_create(self, request: Request, m: re.Match[str]) -> Response:
        self._platform(request)
        body = self._json(request)
        kind = m[1]
        with self.lock:
            if kind == "descriptors":
                return self._descriptor(body)
            if not body.get("title"):
                raise _error(400, "400", "title is required")
            item_id = f"https://ns.adobe.com/{self.tenant}/{kind}/{secrets.token_hex(8)}"
            item = {
                **body,
                "$id": item_id,
                "version": "1.0",
                "meta:tenantNamespace": f"_{self.tenant}",
            }
            if kind == "schemas":
                item.update(self._schema_fields(body))
            if kind == "classes" and not any(
                p.get("$ref") in BEHAVIOURS for p in body.get("allOf", []) if isinstance(p, dict)
            ):  # createClass: a class implements one of the standard behaviours
                raise _error(400, "400", "a class must reference a behaviour in allOf")
            self._store(kind)[item_id] = item
        return Response.json({k: v for k, v in item.items() if k not in ("fields", "identity")},
                             status=201)  # fmt: skip

    def _schema_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A schema is one class and field groups meant for it (meta:intendedToExtend): the
        Schema Registry refuses a field group meant for another class (HTTP 400)."""
        refs = [part.get("$ref") for part in schema.get("allOf", []) if isinstance(part, dict)]
        classes = [r for r in refs if r == PROFILE or r in self.classes]
        if len(classes) != 1:
            raise _error(400, "400", "a schema references exactly one class in allOf "
                         f"({RECORD} is a behaviour, not a class)")  # fmt: skip
        fields: dict[str, str] = {}
        for ref in refs:
            group = self.fieldgroups.get(str(ref))
            if group is None:
                continue
            meant = group.get("meta:intendedToExtend") or []
            if meant and classes[0] not in meant:
                raise _error(400, "400", f"field group {group.get('title')!r} is not meant "
                             f"for the class {classes[0]}")  # fmt: skip
            for definition in group.get("definitions", {}).values():
                fields.update(_leaves(definition))
        identity = "identityMap" if PROFILE in refs else ""
        return {"fields": fields, "identity": identity}

    def patch_fieldgroup(self, request: Request, m: re.Match[str]) -> Response:
        """updateFieldGroup (PATCH, JSON Patch): only additive changes to a field group in use
        (schema evolution: "only non-destructive changes"); its schemas gain the fields."""
        self._platform(request)
        ops = self._json_value(request, b"[]", " (a JSON Patch)")
        with self.lock:
            group = self.fieldgroups.get(unquote(m[1]))
            if group is None:
                raise _error(404, "404", f"field group {unquote(m[1])} not found")
            for op in ops if isinstance(ops, list) else []:
                if op.get("op") != "add":
                    raise _error(400, "400", "only additive changes (op add) to a field group")
                _json_add(group, str(op.get("path", "")), op.get("value"))
            group["version"] = f"1.{int(str(group.get('version', '1.0')).split('.')[-1]) + 1}"
            for schema in self.schemas.values():
                if any(p.get("$ref") == group["$id"] for p in schema.get("allOf", [])
                       if isinstance(p, dict)):  # fmt: skip
                    identity = schema.get("identity", "")
                    schema.update(self._schema_fields(schema))
                    schema["identity"] = identity or schema["identity"]
            return Response.json({k: v for k, v in group.items() if k != "fields"})

    def _descriptor(self, body: dict[str, Any]) -> Response:
        # xdm:descriptorIdentity: xdm:sourceSchema, xdm:sourceProperty, xdm:namespace
        schema = self.schemas.get(str(body.get("xdm:sourceSchema")))
        if schema is None:
            raise _error(400, "400", "xdm:sourceSchema is not a schema")
        item_id = secrets.token_hex(10)
        self.descriptors[item_id] = {**body, "@id": item_id}
        if body.get("@type") == "xdm:descriptorIdentity" and body.get("xdm:isPrimary"):
            schema["identity"] = (
                str(body.get("xdm:sourceProperty", "")).strip("/").replace("/", ".")
            )
        return Response.json(self.descriptors[item_id], status=201)

    # -- Access Control (access-control.yaml listEffectiveAclPolicies) -------------------
    def effective_policies(self, request: Request, _: re.Match[str]) -> Response:
        self._platform(request)
        paths = self._json_value(request)  # parameters: json-header
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _error(400, "400", "the body must be an array of resource urls")
        policies: dict[str, list[str]] = {}
        for path in paths:
            kind, _, name = path.strip("/").partition("/")
            if kind == "permissions" and name in self.permissions:
                policies[path] = ["*"]  # an active permission is answered with "*"
            elif kind == "resource-types" and (f"manage-{name}" in self.permissions):
                policies[path] = ["read", "write", "delete"]
            elif kind == "resource-types" and (f"view-{name}" in self.permissions):
                policies[path] = ["read"]
            # "any permissions ... not active for the user are omitted from the response"
        return Response.json({"policies": policies})

    # -- CJA (cja-apis static/swagger.json getConnectionsForCompany_1) -------------------
    def cja_connections(self, request: Request, _: re.Match[str]) -> Response:
        self.adobe._cja(request)
        wanted = [d for d in request.param("dataSetIds").split(",") if d]
        content = [
            c for c in self.connections
            if not wanted or any(d["id"] in wanted for d in c.get("dataSets", []))
        ]  # fmt: skip
        # the connections page (swagger.json): content, totalElements, totalPages, number,
        # last - paged by page/limit (``connections_page`` items here unless limit is smaller)
        size = min(int(request.param("limit") or 100), self.connections_page)
        page = int(request.param("page") or 0)
        pages = max(1, -(-len(content) // size))
        return Response.json({"content": content[page * size : (page + 1) * size],
                              "totalElements": len(content), "last": page + 1 >= pages,
                              "totalPages": pages, "number": page})  # fmt: skip
