"""Adobe stand-in: IMS, Analytics 2.0 (discovery, Data Sources), BDIA, Target, CJA.

Its rules come from Adobe's published specifications (each route names its source), never from
feedsync's clients: ``tests/conformance/spec.py`` holds the same table the client tests use, and
the sandbox's own tests check it against that table. It refuses what Adobe refuses (bad client
credentials, bad JWTs, missing headers, bad multipart bodies, data source and BDIA files that
break the rules, pacing) and keeps what it accepted in plain attributes for tests:
``datasource_jobs``, ``bdia_ingested``, ``profiles``, ``batches``.

Adobe's verdicts can be scripted: ``fail_jobs`` (file name substrings whose Data Sources jobs end
in ``failure``), ``reject_bdia`` (idempotency keys answered ``REJECTED``), ``error_bdia`` (key
substrings whose files end in ``ERROR`` after upload: nothing ingested), ``bdia_processing``
(key lookups answered ``PROCESSING`` before ``COMPLETE``), ``invalid_bdia_rows`` (key substring
-> rows skipped as invalid), ``stuck_batches`` (Target batches that end ``stuck``). The Analytics 1.4 API is gone (retired 2026-08-12): its
endpoint answers 404 like the switched-off service.
"""

from __future__ import annotations

import gzip
import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt

from feedsync.adobe import bdia as bdia_rules
from feedsync.adobe import datasource_file
from sandbox.server import HttpError, Request, Response, SandboxServer

ORG = "0123456789ABCDEF01234567@AdobeOrg"
ALLOWED_SCOPES = frozenset(
    {
        "openid",
        "AdobeID",
        "read_organizations",
        "additional_info.projectedProductContext",
        "additional_info.job_function",
        "target_sdk",
    }
)


@dataclass
class AdobeAccount:
    client_id: str = "sandbox-client-id"
    client_secret: str = "p8e-sandbox-client-secret-000000"
    org_id: str = ORG
    technical_account_id: str = "ABCDEF0123456789@techacct.adobe.com"
    public_key_pem: str | None = None  # set to accept service-account JWTs
    company_id: str = "acmeco0"
    company_name: str = "Acme Co"
    tenant: str = "acme"
    target_client: str = "acme"


def _error(status: int, code: str, message: str, **headers: str) -> HttpError:
    return HttpError(status, {"error_code": code, "message": message}, headers)


def _ims_error(status: int, error: str, description: str) -> HttpError:
    return HttpError(status, {"error": error, "error_description": description})


ISSUED_TOKEN_HOOKS: list[Callable[[str], None]] = []  # tests register secret scanners here


@dataclass
class _Tokens:
    issued: dict[str, float] = field(default_factory=dict)  # token -> expires at (epoch)

    def issue(self, lifetime: float) -> str:
        token = "sbx-" + secrets.token_hex(16)
        for hook in ISSUED_TOKEN_HOOKS:
            hook(token)
        self.issued[token] = time.time() + lifetime
        return token

    def valid(self, token: str) -> bool:
        return self.issued.get(token, 0.0) > time.time()


class AdobeStandIn:
    def __init__(
        self,
        server: SandboxServer,
        account: AdobeAccount | None = None,
        *,
        token_lifetime: float = 86_399,
        jobs_page_size: int = 100,
        bdia_interval: float = 1.0,
        bdia_group_interval: float = 20.0,
    ) -> None:
        self.server = server
        self.account = account or AdobeAccount()
        self.token_lifetime = token_lifetime
        self.jobs_page_size = jobs_page_size
        self.bdia_interval = bdia_interval
        self.bdia_group_interval = bdia_group_interval
        self.tokens = _Tokens()
        self.profile_tokens = _Tokens()
        self.profile_token_lifetime = 3600.0
        self.profile_token_requests = 0
        self.token_requests = 0
        self.lock = threading.RLock()
        self._ids = itertools.count(33_376_800)
        self.datasource_accounts: dict[str, dict[int, dict[str, Any]]] = {
            "acmeprod": {101: self._account_record(101, "feedsync CRM")}
        }
        self.datasource_jobs: dict[int, dict[str, Any]] = {}
        self.datasource_files: dict[int, bytes] = {}
        self.fail_jobs: set[str] = set()  # file name substrings: those jobs end in failure
        self.reject_bdia: set[str] = set()  # idempotency keys answered status_code REJECTED
        self.error_bdia: set[str] = set()  # key substrings: the file ends ERROR after upload
        self.error_bdia_next = 0  # the next N files taken end ERROR after upload
        self.bdia_processing = 0  # key lookups answered PROCESSING before COMPLETE
        self.invalid_bdia_rows: dict[str, int] = {}  # key substring -> rows skipped as invalid
        self.stuck_batches: set[str] = set()  # Target batch ids that end "stuck"
        self.stick_next = 0  # the next N submitted Target batches end "stuck"
        self.hold_jobs = False  # jobs stay "processing" (a slow Adobe)
        self.bdia_ingested: dict[str, dict[str, Any]] = {}  # idempotency key -> result
        self.bdia_files: dict[str, bytes] = {}
        self._bdia_last = float("-inf")
        self._bdia_group_last: dict[str, float] = {}
        self.profiles: dict[str, dict[str, str]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.dataviews: list[dict[str, Any]] = [
            {"id": f"dv_{n:03d}", "name": f"View {n}", "owner": {"name": "Ana"}} for n in range(5)
        ]
        self._register()

    # -- helpers -----------------------------------------------------------------------
    def _account_record(self, number: int, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "email": "ops@example.com",
            "data_source_id": number,
            "type": "generic",
            "date_created": time.strftime("%Y-%m-%d"),
            "ftp_hostname": "ftp.example.invalid",
            "ftp_username": f"acmeprod_{number}",
            "ftp_password": "not-a-real-password",
        }

    def revoke_tokens(self) -> None:
        """Every issued token stops working (as after a key rotation): APIs answer 401."""
        self.tokens.issued.clear()

    def _authorize(self, request: Request) -> None:
        auth = request.header("authorization")
        if not auth.startswith("Bearer ") or not self.tokens.valid(auth[7:]):
            raise _error(401, "401013", "Oauth token is not valid")
        if request.header("x-api-key") != self.account.client_id:
            raise _error(403, "403000", "Api Key is invalid")

    def _company(self, request: Request, company: str) -> None:
        self._authorize(request)
        if company != self.account.company_id:
            raise _error(403, "403025", "Profile is not valid")
        if request.header("x-proxy-global-company-id") != company:
            raise _error(400, "missing_header", "x-proxy-global-company-id is required")

    # -- routes -------------------------------------------------------------------------
    def _register(self) -> None:
        route = self.server.route
        route("POST", r"/ims/token/v3", self.ims_token)
        route("POST", r"/ims/exchange/jwt", self.ims_jwt)
        route("GET", r"/discovery/me", self.discovery)
        route("GET", r"/api/([^/]+)/datasources/account/([^/]+)", self.ds_accounts)
        route("POST", r"/api/([^/]+)/datasources/account/([^/]+)", self.ds_create_account)
        route("GET", r"/api/([^/]+)/datasources/account/([^/]+)/(\d+)", self.ds_account)
        route("DELETE", r"/api/([^/]+)/datasources/account/([^/]+)/(\d+)", self.ds_delete_account)
        route("POST", r"/api/([^/]+)/datasources/job/([^/]+)/(\d+)", self.ds_upload)
        route("GET", r"/api/([^/]+)/datasources/job/([^/]+)/(\d+)", self.ds_jobs)
        route("GET", r"/api/([^/]+)/datasources/job/([^/]+)/(\d+)/(\d+)", self.ds_job)
        route("POST", r"/aa/collect/v1/events(/validate)?", self.bdia_events)
        route("GET", r"/aa/collect/v1/events/key/([^/]+)", self.bdia_key)
        route("POST", r"/([^/]+)/target/authentication/token", self.target_token)
        route("GET", r"/([^/]+)/target/(activities|offers|audiences)", self.target_list)
        route(
            "GET", r"/([^/]+)/target/(activities|offers|audiences)/(?:\w+/)?(\d+)", self.target_get
        )
        route("POST", r"/([^/]+)/target/batch", self.target_admin_batch)
        route("POST", r"/m2/([^/]+)/v2/profile/batchUpdate", self.target_batch_update)
        route("GET", r"/m2/([^/]+)/profile/batchStatus", self.target_batch_status)
        route("GET", r"/m2/([^/]+)/profile/update", self.target_profile_update)
        route("GET", r"/rest/v1/profiles/thirdPartyId/([^/]+)", self.target_profile)
        # AdobeDocs/cja-apis static/swagger.json: getCurrentUser, getDataViewsForCompany,
        # createDataView
        route("GET", r"/configuration/users/me", self.cja_me)
        route("GET", r"/data/dataviews", self.cja_dataviews)
        route("POST", r"/data/dataviews", self.cja_create)
        route("GET", r"/_sandbox/adobe", self.summary)

    # -- IMS ---------------------------------------------------------------------------
    def _client(self, form: dict[str, str]) -> None:
        if form.get("client_id") != self.account.client_id:
            raise _ims_error(400, "invalid_client", "invalid client_id parameter")
        if form.get("client_secret") != self.account.client_secret:
            raise _ims_error(401, "invalid_client", "invalid client_secret parameter")

    def ims_token(self, request: Request, _: re.Match[str]) -> Response:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            raise _ims_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        self._client(form)
        scopes = {s for s in form.get("scope", "").split(",") if s}
        if not scopes or scopes - ALLOWED_SCOPES:
            bad = ", ".join(sorted(scopes - ALLOWED_SCOPES)) or "(none)"
            raise _ims_error(400, "invalid_scope", f"invalid scope: {bad}")
        with self.lock:
            self.token_requests += 1
            token = self.tokens.issue(self.token_lifetime)
        return Response.json(
            {"access_token": token, "token_type": "bearer", "expires_in": int(self.token_lifetime)}
        )

    def ims_jwt(self, request: Request, _: re.Match[str]) -> Response:
        form = request.form()
        self._client(form)
        if not self.account.public_key_pem:
            raise _ims_error(400, "invalid_client", "no service account credential on this client")
        try:
            claims = jwt.decode(
                form.get("jwt_token", ""),
                self.account.public_key_pem,
                algorithms=["RS256"],
                audience=f"{self.server.url}/c/{self.account.client_id}",
                issuer=self.account.org_id,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _ims_error(400, "invalid_token", "JWT token is expired") from None
        except jwt.InvalidAudienceError:
            raise _ims_error(400, "invalid_token", "JWT audience is not valid") from None
        except jwt.InvalidIssuerError:
            raise _ims_error(400, "invalid_token", "JWT issuer is not valid") from None
        except jwt.InvalidSignatureError:
            raise _ims_error(400, "invalid_signature", "JWT signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise _ims_error(
                400, "invalid_token", f"JWT is not valid: {type(exc).__name__}"
            ) from None
        if claims.get("sub") != self.account.technical_account_id:
            raise _ims_error(400, "invalid_token", "JWT subject is not the technical account")
        metascope = f"{self.server.url}/s/ent_analytics_bulk_ingest_sdk"
        if claims.get(metascope) is not True:
            raise _ims_error(400, "invalid_scope", "JWT lacks a metascope this client has")
        with self.lock:
            self.token_requests += 1
            token = self.tokens.issue(self.token_lifetime)
        return Response.json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime * 1000),
            }
        )

    # -- Analytics 2.0 -----------------------------------------------------------------
    def discovery(self, request: Request, _: re.Match[str]) -> Response:
        self._authorize(request)
        company = {
            "globalCompanyId": self.account.company_id,
            "companyName": self.account.company_name,
            "apiRateLimitPolicy": "aa_api_tier10_tp",
            "dpc": "pnw",
        }
        return Response.json(
            {
                "imsUserId": self.account.technical_account_id,
                "imsOrgs": [{"imsOrgId": self.account.org_id, "companies": [company]}],
            }
        )

    def _accounts(self, rsid: str) -> dict[int, dict[str, Any]]:
        if rsid not in self.datasource_accounts:
            raise _error(404, "404", f"report suite {rsid} not found")
        return self.datasource_accounts[rsid]

    def ds_accounts(self, request: Request, m: re.Match[str]) -> Response:
        self._company(request, m[1])
        return Response.json(list(self._accounts(m[2]).values()))

    def ds_account(self, request: Request, m: re.Match[str]) -> Response:
        self._company(request, m[1])
        account = self._accounts(m[2]).get(int(m[3]))
        if account is None:
            raise _error(404, "404", f"data source {m[3]} not found")
        return Response.json(account)

    def ds_create_account(self, request: Request, m: re.Match[str]) -> Response:
        # static/data-sources.json createAccount: type, name and email query parameters
        self._company(request, m[1])
        missing = [p for p in ("type", "name", "email") if not request.param(p)]
        if missing:
            raise _error(400, "400", f"missing query parameter(s): {', '.join(missing)}")
        accounts = self.datasource_accounts.setdefault(m[2], {})
        number = max(accounts, default=100) + 1
        accounts[number] = self._account_record(number, request.param("name", "unnamed"))
        accounts[number]["type"] = request.param("type", "generic")
        return Response.json(accounts[number])

    def ds_delete_account(self, request: Request, m: re.Match[str]) -> Response:
        self._company(request, m[1])
        if self._accounts(m[2]).pop(int(m[3]), None) is None:
            raise _error(404, "404", f"data source {m[3]} not found")
        return Response.json({"success": True, "message": "Account deleted"})

    def ds_upload(self, request: Request, m: re.Match[str]) -> Response:
        self._company(request, m[1])
        if int(m[3]) not in self._accounts(m[2]):
            raise _error(404, "404", f"data source {m[3]} not found")
        parts = request.multipart()
        if "file" not in parts or not parts["file"][0]:
            raise _error(400, "400", "the upload needs a multipart field 'file' with a file name")
        filename, data = parts["file"]
        problems = datasource_file.problems(data)
        if problems:
            raise _error(400, "400", f"{filename}: " + "; ".join(problems))
        rows = max(
            0,
            sum(1 for line in data.decode().splitlines() if line and not line.startswith("#")) - 1,
        )
        with self.lock:
            job_id = next(self._ids)
            job = {
                "filename": filename,
                "rows": rows,
                "job_id": job_id,
                "status": "uploaded",
                "uploaded_date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "started_processing_date": None,
                "finished_processing_date": None,
                "rsid": m[2],
                "data_source_id": int(m[3]),
            }
            self.datasource_jobs[job_id] = job
            self.datasource_files[job_id] = data
        return Response.json({k: v for k, v in job.items() if k not in ("rsid", "data_source_id")})

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k not in ("rsid", "data_source_id")}

    def ds_jobs(self, request: Request, m: re.Match[str]) -> Response:
        self._company(request, m[1])
        status = request.param("status")
        if not status:
            raise _error(400, "400", "status is required")
        page = int(request.param("page", "1") or 1)
        with self.lock:
            jobs = [
                self._public(j)
                for j in self.datasource_jobs.values()
                if j["rsid"] == m[2] and j["data_source_id"] == int(m[3]) and j["status"] == status
            ]
        size = self.jobs_page_size
        total_pages = max(1, -(-len(jobs) // size))
        return Response.json(
            {
                "page": page,
                "jobs": jobs[(page - 1) * size : page * size],
                "total_pages": total_pages,
            }
        )

    def ds_job(self, request: Request, m: re.Match[str]) -> Response:
        # AdobeDocs/analytics-2.0-apis static/data-sources.json getJob; statuses uploaded,
        # processing, success, failure (the job list's status enum)
        self._company(request, m[1])
        with self.lock:
            job = self.datasource_jobs.get(int(m[4]))
            if job is None or job["rsid"] != m[2]:
                raise _error(404, "404", f"job {m[4]} not found")
            self._advance(job)
            return Response.json(self._public(job))

    def _advance(self, job: dict[str, Any]) -> None:
        """Each look moves a job on: uploaded -> processing -> success (or failure)."""
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        if job["status"] == "uploaded":
            job.update(status="processing", started_processing_date=now)
        elif job["status"] == "processing" and not self.hold_jobs:
            failed = any(part in job["filename"] for part in self.fail_jobs)
            job.update(status="failure" if failed else "success", finished_processing_date=now)

    # -- BDIA --------------------------------------------------------------------------
    def _pace(self, group: str | None) -> None:
        now = time.monotonic()
        with self.lock:
            wait = self._bdia_last + self.bdia_interval - now
            if group is not None:
                wait = max(
                    wait,
                    self._bdia_group_last.get(group, float("-inf"))
                    + self.bdia_group_interval
                    - now,
                )
            if wait > 0:
                raise _error(429, "429050", "Too many requests", **{"Retry-After": f"{wait:.2f}"})
            self._bdia_last = now
            if group is not None:
                self._bdia_group_last[group] = now

    def bdia_events(self, request: Request, m: re.Match[str]) -> Response:
        # AdobeDocs/analytics-2.0-apis src/pages/guides/endpoints/bulk-data-insertion/
        # endpoints.md: x-adobe-vgid required for ingestion, x-adobe-idempotency-key optional
        # (feedsync always sends one), multipart field "file"; file rules from file-format.md.
        self._authorize(request)
        validate_only = bool(m[1])
        group = request.header("x-adobe-vgid")
        if not group and not validate_only:
            raise _error(400, "400", "x-adobe-vgid header is required")
        key = request.header("x-adobe-idempotency-key")
        self._pace(None if validate_only else group)
        parts = request.multipart()
        if "file" not in parts:
            raise _error(400, "400", "the request needs a multipart field 'file'")
        filename, data = parts["file"]
        problems = bdia_rules.file_problems(data)
        if validate_only:  # "Success response" / "Failure response" of the validate endpoint
            if problems:
                raise HttpError(400, {"error": "; ".join(problems)})
            return Response.json({"success": "File is valid"})
        if problems and "not a gzip file" in problems:
            raise _error(400, "400", "; ".join(problems))
        known = self._ingest(key or secrets.token_hex(16), group, filename, data)
        return Response.json({k: v for k, v in known.items() if not k.startswith("_")})

    def _ingest(self, key: str, group: str, filename: str | None, data: bytes) -> dict[str, Any]:
        with self.lock:
            known = self.bdia_ingested.get(key)
            if known is not None:  # the idempotency key makes a re-send a no-op
                return known
            problems = bdia_rules.file_problems(data)
            rejected = bool(problems) or key in self.reject_bdia
            rows = max(0, len(gzip.decompress(data).splitlines()) - 1)
            known = {
                "file_id": secrets.token_hex(8),
                "visitor_group_id": group,
                "size": len(data),
                "received_date": int(time.time()),
                "rows": rows,
                "invalid_rows": rows if rejected else 0,
                "upload_name": filename or "",
                "status": "File rejected" if rejected else "File received",
                "status_code": "REJECTED" if rejected else "UPLOADED",
                "processing_log": "; ".join(problems) or ("rejected" if rejected else ""),
                "idempotency_key": key,
            }
            if not rejected and self.error_bdia_next:
                self.error_bdia_next -= 1
                known["_will_error"] = True
            self.bdia_ingested[key] = known
            if not rejected:
                self.bdia_files[key] = data
        return known

    def bdia_key(self, request: Request, m: re.Match[str]) -> Response:
        # endpoints.md, "Idempotency Key Lookup": success {file_id, size, received_date, rows,
        # idempotency_key}; failure {"error": "File not found"}. The file's state follows
        # static/bulk-data-insertion.json UploadedFileInfo: status_code REJECTED | UPLOADED |
        # PROCESSING | COMPLETE | ERROR, invalid_rows = "rows not submitted to analytics for
        # being invalid", processing_log.
        self._authorize(request)
        key = unquote(m[1])
        with self.lock:
            known = self.bdia_ingested.get(key)
            if known is None:
                raise HttpError(404, {"error": "File not found"})
            self._bdia_advance(key, known)
        keep = ("file_id", "size", "received_date", "rows", "idempotency_key", "status_code",
                "status", "invalid_rows", "processing_log")  # fmt: skip
        return Response.json({k: known[k] for k in keep if k in known})

    def _bdia_advance(self, key: str, known: dict[str, Any]) -> None:
        """One step of a file's processing per lookup: UPLOADED -> PROCESSING -> COMPLETE, or
        ERROR for a scripted key (its hits are then not in Analytics)."""
        if known["status_code"] not in ("UPLOADED", "PROCESSING"):
            return
        if known.get("_will_error") or any(part in key for part in self.error_bdia):
            known.update(
                status_code="ERROR",
                status="File processing error",
                processing_log="An error occurred while processing the file",
            )
            self.bdia_files.pop(key, None)
            return
        seen = known.setdefault("_lookups", 0) + 1
        known["_lookups"] = seen
        if seen <= self.bdia_processing:
            known.update(status_code="PROCESSING", status="File processing")
            return
        invalid = sum(n for part, n in self.invalid_bdia_rows.items() if part in key)
        known.update(
            status_code="COMPLETE",
            status="File processed",
            invalid_rows=invalid,
            processing_log=f"{invalid} rows were invalid" if invalid else "",
        )

    # -- Target ------------------------------------------------------------------------
    def _tenant(self, request: Request, tenant: str, version: str | None = None) -> None:
        self._authorize(request)
        if tenant != self.account.tenant:
            raise _error(404, "404", f"tenant {tenant} not found")
        if version is not None:
            accept = request.header("accept")
            if accept != f"application/vnd.adobe.target.{version}+json":
                raise HttpError(
                    406,
                    {
                        "errors": [
                            {
                                "errorCode": "NotAcceptable",
                                "message": f"Accept must be application/vnd.adobe.target.{version}+json",
                            }
                        ]
                    },
                )

    def target_token(self, request: Request, m: re.Match[str]) -> Response:
        # AdobeDocs/target-developers src/admin-api.json requestAuthorizationToken: query
        # authorizationScope (profile_api | debug_tools), 201 AuthorizationToken
        # {accessToken, tokenType, scope, expiresIn} as application/vnd.adobe.target.v1+json
        self._tenant(request, m[1], "v1")
        self.profile_token_requests += 1
        scope = request.param("authorizationScope")
        if scope not in ("profile_api", "debug_tools"):
            raise _error(400, "400", "authorizationScope must be profile_api or debug_tools")
        body = {
            "accessToken": self.profile_tokens.issue(self.profile_token_lifetime),
            "tokenType": "bearer",
            "scope": scope,
            "expiresIn": int(self.profile_token_lifetime),
        }
        return Response(201, __import__("json").dumps(body).encode(),
                         {"Content-Type": "application/vnd.adobe.target.v1+json"})  # fmt: skip

    _VERSIONS = {"activities": "v3", "offers": "v2", "audiences": "v3"}
    _ITEMS = {
        kind: [{"id": 1000 + n, "name": f"{kind[:-1]} {n}"} for n in range(3)]
        for kind in ("activities", "offers", "audiences")
    }

    def target_list(self, request: Request, m: re.Match[str]) -> Response:
        self._tenant(request, m[1], self._VERSIONS[m[2]])
        items = self._ITEMS[m[2]]
        offset, limit = int(request.param("offset", "0")), int(request.param("limit", "2"))
        return Response.json(
            {
                "offset": offset,
                "limit": limit,
                "total": len(items),
                m[2]: items[offset : offset + limit],
            }
        )

    def target_get(self, request: Request, m: re.Match[str]) -> Response:
        self._tenant(request, m[1], self._VERSIONS[m[2]])
        for item in self._ITEMS[m[2]]:
            if item["id"] == int(m[3]):
                return Response.json(item)
        raise _error(404, "404", "not found")

    def target_admin_batch(self, request: Request, m: re.Match[str]) -> Response:
        # admin-api.json processBatchOperations: query authRequestData and requestHost
        # (required), request body application/json (not the versioned media type), 1..256
        # operations
        self._tenant(request, m[1], "v1")
        if request.header("content-type").split(";")[0].strip() != "application/json":
            raise HttpError(415, {"errors": [{"errorCode": "UnsupportedMediaType",
                                              "message": "batch takes application/json"}]})  # fmt: skip
        if not request.param("requestHost") or not request.param("authRequestData"):
            raise _error(400, "400", "authRequestData and requestHost are required")
        ops = request.json().get("operations", [])
        if not 1 <= len(ops) <= 256:
            raise _error(400, "400", "operations: 1 to 256 items")
        return Response.json(
            {"results": [{"operationId": i, "statusCode": 200} for i, _ in enumerate(ops)]}
        )

    def _profile_auth(self, request: Request, client: str) -> None:
        if client != self.account.target_client:
            raise HttpError(404, {"message": f"client {client} not found"})
        # profile-api-settings.md: "Authorization" : "Bearer <token>"
        auth = request.header("authorization")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if not self.profile_tokens.valid(token):
            raise HttpError(
                401, {"message": "profile API authentication token is missing or invalid"}
            )

    def target_batch_update(self, request: Request, m: re.Match[str]) -> Response:
        self._profile_auth(request, m[1])

        def refuse(message: str) -> Response:
            return Response.xml(
                f"<response><success>false</success><message>{message}</message></response>", 400
            )

        if not request.body.startswith(b"batch="):
            return refuse("the body must start with batch=")
        if len(request.body) >= 50 * 1024 * 1024:
            return refuse("batch file must be under 50 MB")
        lines = request.body[len("batch=") :].decode("utf-8").splitlines()
        header = lines[0].split(",")
        if header[0] not in ("thirdPartyId", "pcId"):
            return refuse("the first column must be thirdPartyId or pcId")
        if len(lines) - 1 > 500_000:
            return refuse("at most 500000 rows per batch")
        updates = {}
        for number, line in enumerate(lines[1:], start=2):
            cells = line.split(",")
            if len(cells) != len(header):
                return refuse(
                    f"line {number}: {len(cells)} values for {len(header)} columns (values must be URL-encoded)"
                )
            updates[unquote(cells[0])] = {
                unquote(h): unquote(c) for h, c in zip(header[1:], cells[1:], strict=True) if c
            }
        batch_id = f"{m[1]}-{int(time.time() * 1000)}-{secrets.randbelow(10**8)}"
        with self.lock:
            for key, values in updates.items():
                self.profiles.setdefault(key, {}).update(values)
            self.batches[batch_id] = {"rows": len(updates), "polls": 0, "key": header[0]}
            if self.stick_next > 0:
                self.stick_next -= 1
                self.stuck_batches.add(batch_id)
        url = f"{self.server.url}/m2/{m[1]}/profile/batchStatus?batchId={batch_id}"
        return Response.xml(
            f"<response><success>true</success><batchStatus>{url}</batchStatus>"
            "<message>Batch submitted for processing</message></response>"
        )

    def target_batch_status(self, request: Request, m: re.Match[str]) -> Response:
        # profile-bulk-api.md: status complete | incomplete | stuck; showDetails=true adds
        # consumedCount, successfulUpdates, profilesNotFound, failedUpdates
        batch_id = request.param("batchId")
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return Response.xml(
                    "<response><success>false</success><message>unknown batchId</message></response>",
                    404,
                )
            batch["polls"] += 1
            status = "incomplete"
            if batch["polls"] > 1:
                status = "stuck" if batch_id in self.stuck_batches else "complete"
        body = f"<batchId>{batch_id}</batchId><status>{status}</status><batchSize>{batch['rows']}</batchSize>"
        if request.param("showDetails") == "true":
            done = batch["rows"] if status == "complete" else 0
            body += (
                f"<consumedCount>{done}</consumedCount><successfulUpdates>{done}</successfulUpdates>"
                f"<profilesNotFound>0</profilesNotFound><failedUpdates>{batch['rows'] - done if status == 'stuck' else 0}</failedUpdates>"
            )
        return Response.xml(f"<response>{body}</response>")

    def target_profile_update(self, request: Request, m: re.Match[str]) -> Response:
        self._profile_auth(request, m[1])
        key = request.param("mbox3rdPartyId") or request.param("mboxPC")
        if not key:
            raise HttpError(400, {"message": "mbox3rdPartyId or mboxPC is required"})
        attrs = {
            k[len("profile.") :]: v[0] for k, v in request.query.items() if k.startswith("profile.")
        }
        with self.lock:
            self.profiles.setdefault(key, {}).update(attrs)
        return Response.json({"success": True})

    def target_profile(self, request: Request, m: re.Match[str]) -> Response:
        self._profile_auth(request, request.param("client"))
        key = unquote(m[1])
        with self.lock:
            attrs = self.profiles.get(key)
        if attrs is None:
            raise HttpError(404, {"message": "profile not found"})
        return Response.json({"thirdPartyId": key, "profile": attrs})

    # -- CJA ---------------------------------------------------------------------------
    def _cja(self, request: Request) -> None:
        self._authorize(request)
        if request.header("x-gw-ims-org-id") != self.account.org_id:
            raise _error(403, "403", "x-gw-ims-org-id is missing or not this org")

    def cja_me(self, request: Request, _: re.Match[str]) -> Response:
        self._cja(request)
        return Response.json(
            {"imsUserId": self.account.technical_account_id, "imsOrgId": self.account.org_id}
        )

    def cja_dataviews(self, request: Request, _: re.Match[str]) -> Response:
        self._cja(request)
        page, limit = int(request.param("page", "0")), int(request.param("limit", "10"))
        fields = set(request.param("expansion").split(",")) | {"id"}
        with self.lock:
            views = [{k: v for k, v in view.items() if k in fields} for view in self.dataviews]
        total_pages = max(1, -(-len(views) // limit))
        return Response.json(
            {
                "content": views[page * limit : (page + 1) * limit],
                "totalPages": total_pages,
                "lastPage": page + 1 >= total_pages,
                "number": page,
            }
        )

    def cja_create(self, request: Request, _: re.Match[str]) -> Response:
        self._cja(request)
        if not request.header("content-type").startswith("application/json"):
            raise HttpError(415, {"errorCode": "unsupported_media_type", "message": "JSON only"})
        body = request.json()
        if not body.get("name"):
            raise _error(400, "400", "a data view needs a name")
        with self.lock:
            view = {"id": f"dv_{len(self.dataviews):03d}", **body}
            self.dataviews.append(view)
        return Response.json(view)

    # -- introspection (for a sandbox run in another process) ---------------------------
    def summary(self, _request: Request, _: re.Match[str]) -> Response:
        with self.lock:
            return Response.json(
                {
                    "datasource_jobs": list(self.datasource_jobs.values()),
                    "bdia_ingested": list(self.bdia_ingested.values()),
                    "target_profiles": len(self.profiles),
                }
            )
