"""Adobe's (and Marketo's) operations as their published specifications define them: one row per
operation, with the source. The client tests check every request feedsync sends against this
table, and the sandbox tests check the stand-in refuses what the table says Adobe refuses, so
neither can drift from Adobe together.

Where a spec and a guide disagree, the row says which one it follows and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.server import Request


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # regex of the path (full match)
    source: str
    headers: tuple[str, ...] = ()  # required, lower-case
    query: tuple[str, ...] = ()  # required query parameters
    fixed: tuple[tuple[str, str], ...] = ()  # query parameter values the spec fixes
    content_type: str | None = None  # required request media type (prefix)
    accept: str | None = None  # required Accept
    form: tuple[str, ...] = ()  # required urlencoded form fields
    multipart: tuple[str, ...] = ()  # required multipart fields
    body_prefix: bytes | None = None
    bearer: bool = True  # Authorization: Bearer <token>


ANALYTICS = ("authorization", "x-api-key", "x-proxy-global-company-id")
PLATFORM = ("authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name")
IMPORT = "/data/foundation/import/batches"
CATALOG = "/data/foundation/catalog"
SCHEMAS = "/data/foundation/schemaregistry"
KINDS = "(schemas|fieldgroups|classes)"  # descriptors have rows of their own


def _aep(name: str, method: str, path: str, source: str, **rules: Any) -> Operation:
    """An Experience Platform operation: every one requires the four PLATFORM headers."""
    return Operation(name, method, path, f"experience-platform-apis {source}",
                     headers=PLATFORM, **rules)  # fmt: skip


OPERATIONS = (
    # Adobe IMS: Developer Console "OAuth Server-to-Server credential implementation guide"
    # (DESIGN.md 4): form client_id, client_secret, grant_type, scope.
    Operation("ims token", "POST", r"/ims/token/v3", "Adobe IMS OAuth S2S guide",
              content_type="application/x-www-form-urlencoded",
              form=("client_id", "client_secret", "grant_type", "scope"), bearer=False),
    Operation("ims jwt exchange", "POST", r"/ims/exchange/jwt", "Adobe IMS JWT (end of life)",
              content_type="application/x-www-form-urlencoded",
              form=("client_id", "client_secret", "jwt_token"), bearer=False),
    # AdobeDocs/analytics-2.0-apis: discovery and static/data-sources.json
    Operation("discovery", "GET", r"/discovery/me", "analytics-2.0-apis getting started",
              headers=("authorization", "x-api-key")),
    Operation("getAllAccounts", "GET", r"/api/[^/]+/datasources/account/[^/]+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS),
    Operation("createAccount", "POST", r"/api/[^/]+/datasources/account/[^/]+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS,
              query=("type", "name", "email")),
    Operation("getAccount", "GET", r"/api/[^/]+/datasources/account/[^/]+/\d+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS),
    Operation("deleteAccount", "DELETE", r"/api/[^/]+/datasources/account/[^/]+/\d+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS),
    # getJobs: the spec marks status optional; Adobe answers 400 without it, so every call sends
    # one (the guide's examples always do) - we follow the service's behaviour.
    Operation("getJobs", "GET", r"/api/[^/]+/datasources/job/[^/]+/\d+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS,
              query=("status",)),
    Operation("createJob", "POST", r"/api/[^/]+/datasources/job/[^/]+/\d+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS,
              content_type="multipart/form-data", multipart=("file",)),
    Operation("getJob", "GET", r"/api/[^/]+/datasources/job/[^/]+/\d+/\d+",
              "analytics-2.0-apis static/data-sources.json", headers=ANALYTICS),
    # AdobeDocs/analytics-2.0-apis static/data-feeds.json: its paths are under
    # /{globalCompanyId}/data_feeds/ (the guide's prose writes data_feed; the OpenAPI file, from
    # which the API reference is generated, wins). Authorization and x-api-key are required.
    Operation("getDataFeedRequestsForFeed_1", "GET", r"/api/[^/]+/data_feeds/datafeed/requests",
              "analytics-2.0-apis static/data-feeds.json", headers=("authorization", "x-api-key"),
              query=("rsid", "feedId")),
    Operation("resendDatafeed_1", "PUT", r"/api/[^/]+/data_feeds/datafeed/\d+/\d+/resend",
              "analytics-2.0-apis static/data-feeds.json", headers=("authorization", "x-api-key")),
    Operation("redoDatafeed_1", "PUT", r"/api/[^/]+/data_feeds/datafeed/\d+/\d+/redo",
              "analytics-2.0-apis static/data-feeds.json", headers=("authorization", "x-api-key")),
    # static/cloud-locations.json getS3UserArn (security x-user-auth: the same bearer token)
    Operation("getS3UserArn", "GET",
              r"/api/[^/]+/cloud_locations/exportlocations/account/cloudAccount/s3_role_arn",
              "analytics-2.0-apis static/cloud-locations.json",
              headers=("authorization", "x-api-key")),
    # AdobeDocs/experience-platform-apis static/swagger-specs: every Platform operation requires
    # Authorization, x-api-key, x-gw-ims-org-id and x-sandbox-name
    _aep("createBatch", "POST", rf"{IMPORT}", "batch-ingestion.yaml",
         content_type="application/json"),
    _aep("uploadSmallFile", "PUT", rf"{IMPORT}/[^/]+/datasets/[^/]+/files/.+",
         "batch-ingestion.yaml", content_type="application/octet-stream"),
    _aep("completeBatch", "POST", rf"{IMPORT}/[^/]+", "batch-ingestion.yaml",
         query=("action",), fixed=(("action", "COMPLETE"),)),
    _aep("retrieveBatch", "GET", rf"{CATALOG}/batches/[^/]+", "catalog.yaml"),
    _aep("listBatches", "GET", rf"{CATALOG}/batches", "catalog.yaml"),
    _aep("retrieveDataset", "GET", rf"{CATALOG}/dataSets/[^/]+", "catalog.yaml"),
    _aep("listDatasets", "GET", rf"{CATALOG}/dataSets", "catalog.yaml"),
    _aep("createDataset", "POST", rf"{CATALOG}/dataSets", "dataset-service.yaml",
         content_type="application/json"),
    _aep("retrieveStats", "GET", rf"{SCHEMAS}/stats", "schema-registry.yaml"),
    # listEffectiveAclPolicies: a JSON array of resource urls (x-codegen body, json-header)
    _aep("listEffectiveAclPolicies", "POST",
         r"/data/foundation/access-control/acl/effective-policies", "access-control.yaml",
         content_type="application/json"),
    _aep("list tenant resources", "GET", rf"{SCHEMAS}/tenant/{KINDS}", "schema-registry.yaml"),
    _aep("look up a tenant resource", "GET", rf"{SCHEMAS}/tenant/{KINDS}/.+",
         "schema-registry.yaml"),
    _aep("createFieldGroup", "POST", rf"{SCHEMAS}/tenant/fieldgroups", "schema-registry.yaml",
         content_type="application/json"),
    _aep("createSchema", "POST", rf"{SCHEMAS}/tenant/schemas", "schema-registry.yaml",
         content_type="application/json"),
    _aep("createDescriptor", "POST", rf"{SCHEMAS}/tenant/descriptors", "schema-registry.yaml",
         content_type="application/json"),
    _aep("createClass", "POST", rf"{SCHEMAS}/tenant/classes", "schema-registry.yaml",
         content_type="application/json"),
    # updateFieldGroup (PATCH, a JSON Patch array): additive changes, schema evolution
    _aep("updateFieldGroup", "PATCH", rf"{SCHEMAS}/tenant/fieldgroups/.+",
         "schema-registry.yaml", content_type="application/json"),
    # schema-registry.yaml, the descriptors listing's Accept table: xdm+json groups by @type;
    # only the -v2 forms return a paged results array (what feedsync reads)
    _aep("list descriptors", "GET", rf"{SCHEMAS}/tenant/descriptors",
         "schema-registry.yaml (descriptors listing, -v2 Accept)",
         accept="application/vnd.adobe.xdm-v2+json"),
    # getDescriptor: application/vnd.adobe.xdm+json, no version
    _aep("getDescriptor", "GET", rf"{SCHEMAS}/tenant/descriptors/.+",
         "schema-registry.yaml getDescriptor", accept="application/vnd.adobe.xdm+json"),
    # data-access.yaml retrieveFailedBatch: the failed files of a batch, one with ?path=
    _aep("retrieveFailedBatch", "GET", r"/data/foundation/export/batches/[^/]+/failed",
         "data-access.yaml"),
    # AdobeDocs/cja-apis static/swagger.json getConnectionsForCompany_1
    Operation("getConnectionsForCompany_1", "GET", r"/data/connections",
              "cja-apis static/swagger.json",
              headers=("authorization", "x-api-key", "x-gw-ims-org-id")),
    # AdobeDocs/analytics-2.0-apis src/pages/guides/endpoints/bulk-data-insertion/endpoints.md
    # (the guide; static/bulk-data-insertion.json still shows the retired
    # /{globalCompanyId}/bulk_data_insertion path, so the guide wins)
    Operation("bdia events", "POST", r"/aa/collect/v1/events", "bulk-data-insertion endpoints.md",
              headers=("authorization", "x-api-key", "x-adobe-vgid"),
              content_type="multipart/form-data", multipart=("file",)),
    Operation("bdia validate", "POST", r"/aa/collect/v1/events/validate",
              "bulk-data-insertion endpoints.md", headers=("authorization", "x-api-key"),
              content_type="multipart/form-data", multipart=("file",)),
    Operation("bdia key lookup", "GET", r"/aa/collect/v1/events/key/[^/]+",
              "bulk-data-insertion endpoints.md", headers=("authorization", "x-api-key")),
    # AdobeDocs/target-developers src/admin-api.json
    Operation("requestAuthorizationToken", "POST", r"/[^/]+/target/authentication/token",
              "target-developers src/admin-api.json", headers=("authorization", "x-api-key"),
              query=("authorizationScope",), fixed=(("authorizationScope", "profile_api"),),
              accept="application/vnd.adobe.target.v1+json"),
    Operation("getActivities", "GET", r"/[^/]+/target/activities",
              "target-developers src/admin-api.json", headers=("authorization", "x-api-key"),
              accept="application/vnd.adobe.target.v3+json"),
    Operation("getOffers", "GET", r"/[^/]+/target/offers",
              "target-developers src/admin-api.json", headers=("authorization", "x-api-key"),
              accept="application/vnd.adobe.target.v2+json"),
    Operation("getAudiences", "GET", r"/[^/]+/target/audiences",
              "target-developers src/admin-api.json", headers=("authorization", "x-api-key"),
              accept="application/vnd.adobe.target.v3+json"),
    # processBatchOperations lists authRequestData (an object) and requestHost as required
    # query parameters; the guide's examples send none. We follow the spec (sending them is
    # harmless where the gateway fills them in), and the body is plain application/json.
    Operation("processBatchOperations", "POST", r"/[^/]+/target/batch",
              "target-developers src/admin-api.json", headers=("authorization", "x-api-key"),
              content_type="application/json", query=("authRequestData", "requestHost")),
    # AdobeDocs/target-dev.en help/dev/administer/profile-api/
    Operation("bulk profile update v2", "POST", r"/m2/[^/]+/v2/profile/batchUpdate",
              "target-dev.en profile-bulk-api.md", headers=("authorization",),
              body_prefix=b"batch="),
    Operation("batch status", "GET", r"/m2/[^/]+/profile/batchStatus",
              "target-dev.en profile-bulk-api.md", query=("batchId",), bearer=False),
    Operation("single profile update", "GET", r"/m2/[^/]+/profile/update",
              "target-dev.en profile-single-api.md", headers=("authorization",)),
    Operation("fetch profile by thirdPartyId", "GET", r"/rest/v1/profiles/thirdPartyId/[^/]+",
              "target-dev.en profile-fetch.md", headers=("authorization",), query=("client",)),
    # AdobeDocs/cja-apis static/swagger.json
    Operation("getCurrentUser", "GET", r"/configuration/users/me", "cja-apis static/swagger.json",
              headers=("authorization", "x-api-key", "x-gw-ims-org-id")),
    Operation("getDataViewsForCompany", "GET", r"/data/dataviews", "cja-apis static/swagger.json",
              headers=("authorization", "x-api-key", "x-gw-ims-org-id")),
    Operation("createDataView", "POST", r"/data/dataviews", "cja-apis static/swagger.json",
              headers=("authorization", "x-api-key", "x-gw-ims-org-id"),
              content_type="application/json"),
    # AdobeDocs/marketo-apis: identity (the spec shows GET with query parameters; a POST with
    # the same form keeps the secret out of URLs and logs - Marketo accepts both), leads by
    # filter type as POST with _method=GET (over 8 KB of filter values)
    Operation("marketo identity", "POST", r"/identity/oauth/token", "marketo-apis identity",
              form=("grant_type", "client_id", "client_secret"), bearer=False,
              content_type="application/x-www-form-urlencoded"),
    Operation("marketo leads by filter", "POST", r"/rest/v1/leads\.json",
              "marketo-apis getLeadsByFilterUsingGET",
              headers=("authorization",), fixed=(("_method", "GET"),),
              content_type="application/x-www-form-urlencoded",
              form=("filterType", "filterValues")),
)  # fmt: skip


def operation_for(request: Request) -> Operation | None:
    # the most specific (longest) pattern that matches wins
    matches = [
        op
        for op in OPERATIONS
        if op.method == request.method and re.fullmatch(op.path, request.path)
    ]
    return max(matches, key=lambda op: len(op.path), default=None)


def problems(request: Request) -> list[str]:
    """How ``request`` departs from its operation's spec row ([] when it conforms)."""
    op = operation_for(request)
    if op is None:
        return [f"{request.method} {request.path}: no such operation in the specs"]
    found = [f"missing header {h}" for h in op.headers if not request.header(h)]
    found += [f"missing query parameter {q}" for q in op.query if not request.param(q)]
    found += [
        f"query {k}={request.param(k)!r}, the spec says {v!r}"
        for k, v in op.fixed
        if request.param(k) != v
    ]
    kind = request.header("content-type")
    if op.content_type and not kind.startswith(op.content_type):
        found.append(f"content type {kind!r}, the spec says {op.content_type}")
    if op.accept and request.header("accept") != op.accept:
        found.append(f"Accept {request.header('accept')!r}, the spec says {op.accept}")
    if op.bearer and op.headers and not request.header("authorization").startswith("Bearer "):
        found.append("Authorization is not 'Bearer <token>'")
    form = request.form() if op.form else {}
    found += [f"missing form field {f}" for f in op.form if f not in form]
    if op.multipart:
        fields = request.multipart()
        found += [f"missing multipart field {f}" for f in op.multipart if f not in fields]
    if op.body_prefix is not None and not request.body.startswith(op.body_prefix):
        found.append(f"body does not start with {op.body_prefix!r}")
    return [f"{op.name}: {p}" for p in found]
