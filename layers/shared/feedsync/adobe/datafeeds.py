"""Analytics 2.0 Data Feed API: a feed's requests, and asking Adobe to send one again.

AdobeDocs/analytics-2.0-apis ``static/data-feeds.json`` (the OpenAPI file; its paths are under
``/{globalCompanyId}/data_feeds/``, the guide's prose writes ``data_feed`` - we follow the file):

- ``getDataFeedRequestsForFeed_1`` GET ``data_feeds/datafeed/requests?rsid&feedId`` with
  ``startDate``/``endDate``, ``limit`` (at most 5000, default 500) and ``offset``;
- ``resendDatafeed_1`` PUT ``data_feeds/datafeed/{feedId}/{requestId}/resend``: send the cached
  files again (only for a completed request whose files are still cached);
- ``redoDatafeed_1`` PUT ``.../redo``: resend when possible, else reprocess then send.
- Cloud Locations ``getS3UserArn`` GET ``cloud_locations/exportlocations/account/cloudAccount/
  s3_role_arn`` (``static/cloud-locations.json``): the Adobe user the delivery role trusts.

Neither PUT is idempotent in effect (each one sends the day again), so a lost answer is never
repeated here: the caller looks the request up (``runCount``, ``runAttempt``) first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from feedsync.adobe.analytics import AnalyticsClient
from feedsync.adobe.errors import AdobeApiError

PAGE = 500  # the spec's default; its maximum is 5000
ACTIONS = ("resend", "redo")


class DataFeedClient:
    def __init__(self, analytics: AnalyticsClient, page: int = PAGE) -> None:
        self.analytics = analytics
        self.page = page

    def requests(
        self, rsid: str, feed_id: int, start: str | None = None, end: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every request of the feed in [start, end] (ISO 8601), all pages."""
        offset = 0
        while True:
            params: dict[str, Any] = {"rsid": rsid, "feedId": int(feed_id), "limit": self.page}
            params["offset"] = offset
            if start:
                params["startDate"] = start
            if end:
                params["endDate"] = end
            try:
                body = self.analytics.get("data_feeds/datafeed/requests", **params)
            except AdobeApiError as exc:
                if exc.status != 404:
                    raise
                # data-feeds.json answers 404 "Datafeed requests not found." both for a feed it
                # does not know and for a window with no request: the feed itself says which
                self._known(rsid, feed_id)
                return  # the feed exists: no request in this window
            data = list(body.get("data") or []) if isinstance(body, dict) else []
            yield from data
            if len(data) < self.page:
                return
            offset += len(data)

    def ask(self, action: str, feed_id: int, request_id: int) -> dict[str, Any]:
        """PUT resend/redo; the answer is the feed (DataFeedView). Never retried after a lost
        answer (``OutcomeUnknownError`` reaches the caller)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown data feed action {action!r}")
        body = self.analytics.call(
            "PUT", f"data_feeds/datafeed/{int(feed_id)}/{int(request_id)}/{action}",
            idempotent=False,
        )  # fmt: skip
        return body if isinstance(body, dict) else {}

    def _known(self, rsid: str, feed_id: int) -> None:
        """get_1 (GET data_feeds/datafeed/{feedId}): a 404 there is a feed Adobe does not know."""
        try:
            self.analytics.get(f"data_feeds/datafeed/{int(feed_id)}")
        except AdobeApiError as exc:
            if exc.status != 404:
                raise
            raise AdobeApiError(
                "Adobe Analytics",
                f"Adobe knows no data feed {feed_id} of report suite "
                f"{rsid} (404): check DATA_FEED_IDS (the DataFeedIds parameter; the id is in "
                "Analytics > Admin > Data feeds)",
                status=404,
            ) from None

    def delivery_user_arn(self) -> str:
        try:
            body = self.analytics.get(
                "cloud_locations/exportlocations/account/cloudAccount/s3_role_arn"
            )
        except AdobeApiError as exc:
            if exc.status not in (401, 403):
                raise
            # cloud-locations.json secures this call with x-user-auth, an IMS *user* token
            raise AdobeApiError(
                "Adobe Analytics",
                f"Cloud Locations refused this credential (HTTP {exc.status}): Adobe's spec "
                "(static/cloud-locations.json) secures getS3UserArn with an IMS user token "
                "(x-user-auth), which a server-to-server credential is not. Copy the Adobe user "
                "ARN from Analytics > Admin > Locations > Add account (Amazon S3 Role ARN) and "
                "give it to feedsync deploy --guided (AdobeUserArn)",
                status=exc.status,
            ) from None
        arn = body.get("userARN") if isinstance(body, dict) else None
        if not arn:
            raise AdobeApiError("Adobe Analytics", "Cloud Locations answered without a userARN")
        return str(arn)
