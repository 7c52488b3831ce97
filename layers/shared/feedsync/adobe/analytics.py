"""Analytics 2.0: company discovery and authenticated calls under /api/{globalCompanyId}."""

from __future__ import annotations

from typing import Any

from feedsync.adobe.errors import AdobeApiError, json_body
from feedsync.adobe.session import AdobeSession

SERVICE = "Adobe Analytics"


class AnalyticsClient:
    def __init__(self, session: AdobeSession, company_id: str | None = None) -> None:
        self.session = session
        self._company_id = company_id

    def discovery(self) -> list[dict[str, Any]]:
        """The companies this credential can reach: ``globalCompanyId``, ``companyName``, org."""
        url = f"{self.session.endpoints.analytics}/discovery/me"
        body = json_body(SERVICE, self.session.request(SERVICE, "GET", url, idempotent=True))
        companies = []
        for org in body.get("imsOrgs", []) if isinstance(body, dict) else []:
            for company in org.get("companies", []):
                companies.append({**company, "imsOrgId": org.get("imsOrgId")})
        return companies

    @property
    def company_id(self) -> str:
        if self._company_id is None:
            companies = self.discovery()
            if not companies:
                raise AdobeApiError(
                    SERVICE,
                    "discovery/me lists no Analytics company for this credential; add the "
                    "Analytics product profile to the Developer Console project",
                )
            if len(companies) > 1:
                names = ", ".join(str(c.get("globalCompanyId")) for c in companies)
                raise AdobeApiError(
                    SERVICE, f"several companies ({names}); set ADOBE_COMPANY_ID to pick one"
                )
            self._company_id = str(companies[0]["globalCompanyId"])
        return self._company_id

    def url(self, path: str) -> str:
        return f"{self.session.endpoints.analytics}/api/{self.company_id}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {"x-proxy-global-company-id": self.company_id, "Accept": "application/json"}

    def call(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> Any:
        """JSON of ``method /api/{company}/{path}``; GET/DELETE count as idempotent."""
        safe = method in ("GET", "HEAD", "DELETE") if idempotent is None else idempotent
        response = self.session.request(
            SERVICE, method, self.url(path), idempotent=safe, headers=self.headers(), **kwargs
        )
        return json_body(SERVICE, response)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, json=body)
