"""Adobe stand-in, Data Feed and Cloud Locations APIs, written from AdobeDocs/analytics-2.0-apis
``static/data-feeds.json`` and ``static/cloud-locations.json`` (each route names its operation).

State: ``feeds`` (feed id -> DataFeedView), ``requests`` (request id -> DataFeedRequestView),
``cached`` (request ids whose files Adobe still holds: only those can be resent). Scripting for
tests: ``add_request`` (a period with any state, error code and message), ``uncache`` (files
gone: resend refused), ``on_delivery`` (called with a request when Adobe sends its files: the
tests write the re-delivery into the moto feed bucket) and ``deliver_resent()`` (Adobe runs the
resends it accepted). Lost answers, 429 and 5xx come from ``SandboxServer.inject``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

from sandbox.adobe import AdobeStandIn, _error
from sandbox.server import Request, Response

FEED_ID = 16756
MAX_LIMIT = 5000  # getDataFeedRequestsForFeed_1: "Max value allowed is 5000. Defaults to 500."
DEFAULT_LIMIT = 500
USER_ARN = "arn:aws:iam::111122223333:user/adobe-analytics-export"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DataFeedStandIn:
    def __init__(self, adobe: AdobeStandIn, zone: str = "US/Mountain") -> None:
        self.adobe = adobe
        self.zone = zone
        self.lock = threading.RLock()
        self._ids = itertools.count(20_055_550)
        self.feeds: dict[int, dict[str, Any]] = {FEED_ID: self._feed(FEED_ID, "acmeprod")}
        self.requests: dict[int, dict[str, Any]] = {}
        self.cached: set[int] = set()
        self.resent: list[int] = []  # accepted resends/redos Adobe has not run yet
        self.arn_needs_user_token = False  # getS3UserArn refuses a call without x-user-auth
        self.asked: list[tuple[str, int]] = []  # every resend/redo Adobe accepted
        self.on_delivery: Callable[[dict[str, Any]], None] | None = None
        route = adobe.server.route
        base = r"/api/([^/]+)/data_feeds/datafeed"
        route("GET", base + r"/requests", self.list_requests)
        route("GET", base + r"/(\d+)", self.get_feed)
        route("PUT", base + r"/(\d+)/(\d+)/(resend|redo|reprocess)", self.rerun)
        route("GET", r"/api/([^/]+)/cloud_locations/exportlocations/account/cloudAccount/"
              r"s3_role_arn", self.user_arn)  # fmt: skip

    def _feed(self, feed_id: int, rsid: str) -> dict[str, Any]:
        # DataFeedView, as the guide's example answers (metadata.feedId, schedule, delivery)
        return {
            "feedName": f"{rsid} daily", "rsid": rsid, "columnPreset": 13280,
            "metadata": {"feedId": feed_id, "feedState": "active", "timeZone": self.zone},
            "schedule": {"interval": "daily", "delay": None},
            "packaging": {"type": "chunked", "compression": "gzip", "manifest": "manifest-file"},
            "delivery": {"cloudLocationUUID": "b21a89e3-ee92-4a67-af34-4a21711cc36b"},
        }  # fmt: skip

    # -- scripting ----------------------------------------------------------------------
    def add_request(
        self,
        day: str,
        state: str = "completed",
        *,
        rsid: str = "acmeprod",
        feed_id: int = FEED_ID,
        error: tuple[int, str] | None = None,
        completed_at: str | None = None,
    ) -> dict[str, Any]:
        """A daily request for ``day`` (midnight to midnight in the feed's zone, in UTC)."""
        from zoneinfo import ZoneInfo

        start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), ZoneInfo(self.zone))
        begin, end = (t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                      for t in (start, start + dt.timedelta(days=1)))  # fmt: skip
        with self.lock:
            request_id = next(self._ids)
            done = completed_at or _now()
            request = {
                "rsid": rsid, "feedId": feed_id, "feedName": f"{rsid} daily",
                "requestId": request_id, "submittedDate": begin, "runCount": 1,
                "runAttempt": done, "completeDate": done if state == "completed" else None,
                "requestPeriodBegin": begin, "requestPeriodEnd": end, "requestState": state,
                "errorCode": error[0] if error else None, "errorMsg": error[1] if error else None,
                "timezone": self.zone,
            }  # fmt: skip
            self.requests[request_id] = request
            if state == "completed":
                self.cached.add(request_id)
        return request

    def fail_resent(self, code: int = 300, message: str = "Delivery Error") -> int:
        """Adobe runs the resends it accepted and fails them, stamped to the second - often the
        very second the run was asked for (runAttempt/completeDate carry no fraction)."""
        with self.lock:
            taken, self.resent = self.resent, []
            for request_id in taken:
                self.requests[request_id].update(
                    requestState="error", errorCode=code, errorMsg=message, completeDate=_now()
                )
        return len(taken)

    def uncache(self, request_id: int) -> None:
        self.cached.discard(request_id)

    def deliver_resent(self) -> int:
        """Adobe runs the resends it accepted: each request completes and its files are sent."""
        with self.lock:
            taken, self.resent = self.resent, []
            for request_id in taken:
                request = self.requests[request_id]
                request.update(requestState="completed", completeDate=_now(), errorCode=None,
                               errorMsg=None)  # fmt: skip
                self.cached.add(request_id)
        for request_id in taken:
            if self.on_delivery is not None:
                self.on_delivery(dict(self.requests[request_id]))
        return len(taken)

    # -- routes -------------------------------------------------------------------------
    def _auth(self, request: Request, company: str) -> None:
        # components.parameters: Authorization ("Bearer " + token) and x-api-key are required
        self.adobe._authorize(request)
        if company != self.adobe.account.company_id:
            raise _error(403, "403025", "Profile is not valid")

    def list_requests(self, request: Request, m: re.Match[str]) -> Response:
        # getDataFeedRequestsForFeed_1: rsid and feedId required; startDate/endDate filter
        # ("on or after" / "on or before"); limit at most 5000 (default 500); offset
        self._auth(request, m[1])
        rsid, feed = request.param("rsid"), request.param("feedId")
        if not rsid or not feed or not feed.isdigit():
            raise _error(400, "400", "Bad Request - rsid and feedId (an integer) are required")
        limit = int(request.param("limit") or DEFAULT_LIMIT)
        offset = int(request.param("offset") or 0)
        if not 0 < limit <= MAX_LIMIT or offset < 0:
            raise _error(400, "400", f"limit must be 1..{MAX_LIMIT} and offset >= 0")
        if int(feed) not in self.feeds or self.feeds[int(feed)]["rsid"] != rsid:
            raise _error(404, "404", "Datafeed requests not found.")
        start, end = request.param("startDate"), request.param("endDate")
        with self.lock:
            rows = [
                dict(r) for r in sorted(self.requests.values(), key=lambda r: -r["requestId"])
                if r["feedId"] == int(feed) and r["rsid"] == rsid
                and (not start or r["requestPeriodBegin"] >= start)
                and (not end or r["requestPeriodBegin"] <= end)
            ]  # fmt: skip
        if not rows and offset == 0:  # the spec's 404 "Datafeed requests not found." covers
            raise _error(404, "404", "Datafeed requests not found.")  # an empty window too
        return Response.json(
            {"limit": limit, "offset": offset, "data": rows[offset : offset + limit]}
        )

    def get_feed(self, request: Request, m: re.Match[str]) -> Response:
        # get_1: the feed (DataFeedView), 404 when Adobe does not know it
        self._auth(request, m[1])
        with self.lock:
            feed = self.feeds.get(int(m[2]))
        if feed is None:
            raise _error(404, "404", "Datafeed not found.")
        return Response.json(feed)

    def rerun(self, request: Request, m: re.Match[str]) -> Response:
        # resendDatafeed_1 / redoDatafeed_1 / reprocessDatafeed_1: 404 "Datafeed not found",
        # 400 "Unable to resend request"; 200 answers the feed (DataFeedView). A resend is only
        # possible for a completed job whose files are cached; redo "first checks if a resend
        # is possible, if not, it reprocesses the request" (analytics.en t-job-rerun.md:
        # completed + cached -> resent; completed, not cached -> reprocessed; failed ->
        # reprocessed; any other status -> not supported)
        self._auth(request, m[1])
        feed_id, request_id, action = int(m[2]), int(m[3]), m[4]
        with self.lock:
            if feed_id not in self.feeds:
                raise _error(404, "404", "Datafeed not found.")
            known = self.requests.get(request_id)
            if known is None or known["feedId"] != feed_id:
                raise _error(404, "404", "Datafeed not found.")
            state = known["requestState"]
            if state not in ("completed", "error"):
                raise _error(400, "400", f"Bad Request - Unable to resend request ({state})")
            resendable = state == "completed" and request_id in self.cached
            if action == "resend" and not resendable:
                raise _error(400, "400", "Bad Request - Unable to resend request")
            known.update(requestState="processing", runCount=known["runCount"] + 1,
                         runAttempt=_now())  # fmt: skip
            self.resent.append(request_id)
            self.asked.append((action, request_id))
            return Response.json(self.feeds[feed_id])

    def user_arn(self, request: Request, m: re.Match[str]) -> Response:
        # cloud-locations.json getS3UserArn: UserArnResponse {"userARN": ...}; the operation's
        # security is x-user-auth (an IMS user token): ``arn_needs_user_token`` refuses a call
        # without one, as Adobe may for a server-to-server credential
        self._auth(request, m[1])
        if self.arn_needs_user_token and not request.header("x-user-auth"):
            raise _error(403, "403", "x-user-auth (an IMS user token) is required")
        return Response.json({"userARN": USER_ARN})
