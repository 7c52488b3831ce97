"""Customer Journey Analytics: who am I, data views (all pages, with ``expansion``), create."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from feedsync.adobe.errors import json_body
from feedsync.adobe.pages import all_pages
from feedsync.adobe.session import AdobeSession
from feedsync.errors import OutcomeUnknownError

SERVICE = "Adobe CJA"


class CjaClient:
    def __init__(self, session: AdobeSession) -> None:
        self.session = session

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            SERVICE,
            method,
            f"{self.session.endpoints.cja}/{path.lstrip('/')}",
            idempotent=method == "GET",
            headers={
                "x-gw-ims-org-id": self.session.credentials.org_id,
                "Accept": "application/json",
            },
            **kwargs,
        )
        return json_body(SERVICE, response)

    def users_me(self) -> dict[str, Any]:
        body: dict[str, Any] = self._call("GET", "configuration/users/me")
        return body

    def dataviews(
        self, expansion: Sequence[str] = ("name", "owner"), limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        def fetch(page: int) -> tuple[list[Any], bool]:
            body = self._call(
                "GET",
                "data/dataviews",
                params={"expansion": ",".join(expansion), "limit": limit, "page": page},
            )
            return _page(body, page)

        return all_pages(fetch)

    def connections(self, dataset_id: str) -> list[dict[str, Any]]:
        """Connections that include ``dataset_id`` (getConnectionsForCompany_1, dataSetIds),
        every page."""

        def fetch(page: int) -> tuple[list[Any], bool]:
            body = self._call("GET", "data/connections", params={
                "dataSetIds": dataset_id, "expansion": "name,dataSets,sandboxName",
                "limit": 100, "page": page,
            })  # fmt: skip
            return _page(body, page)

        return list(all_pages(fetch))

    def create_dataview(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Not idempotent: after a lost answer, find the view by name before giving up."""
        try:
            body: dict[str, Any] = self._call("POST", "data/dataviews", json=definition)
            return body
        except OutcomeUnknownError:
            for view in self.dataviews(("name",)):
                if view.get("name") == definition.get("name"):
                    return view
            raise


def _page(body: Any, page: int) -> tuple[list[Any], bool]:
    """A page of a CJA listing: cja-apis swagger.json pages say ``lastPage`` (data views) or
    ``last`` (connections); either one, or the page count, ends the listing."""
    if not isinstance(body, dict):
        return [], True
    said = body.get("lastPage", body.get("last"))
    last = (said is None or bool(said)) or page + 1 >= int(body.get("totalPages") or 0)
    return list(body.get("content", [])), last
