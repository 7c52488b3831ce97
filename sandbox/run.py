"""Start every stand-in on one loopback port and tell clients where it is."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.adobe import AdobeAccount, AdobeStandIn
from sandbox.adobe_feeds import DataFeedStandIn
from sandbox.aep import PlatformStandIn
from sandbox.marketo import MarketoStandIn
from sandbox.server import SandboxServer


@dataclass
class Sandbox:
    server: SandboxServer
    adobe: AdobeStandIn
    marketo: MarketoStandIn
    feeds: DataFeedStandIn
    platform: PlatformStandIn

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        marketo: dict[str, Any] | None = None,
        **adobe_options: Any,
    ) -> Sandbox:
        server = SandboxServer(host, port)
        adobe = AdobeStandIn(server, AdobeAccount(), **adobe_options)
        crm = MarketoStandIn(server, **(marketo or {}))
        feeds = DataFeedStandIn(adobe)
        platform = PlatformStandIn(adobe)
        server.start()
        return cls(server, adobe, crm, feeds, platform)

    @property
    def url(self) -> str:
        return self.server.url

    def env(self) -> dict[str, str]:
        """Environment variables that point feedsync at this sandbox."""
        account = self.adobe.account
        return {
            "ADOBE_IMS_URL": self.url,
            "ADOBE_ANALYTICS_URL": self.url,
            "ADOBE_BDIA_URL": self.url,
            "ADOBE_TARGET_URL": self.url,
            "ADOBE_TARGET_EDGE_URL": self.url,
            "ADOBE_CJA_URL": self.url,
            "ADOBE_PLATFORM_URL": self.url,
            "ADOBE_CLIENT_ID": account.client_id,
            "ADOBE_CLIENT_SECRET": account.client_secret,
            "ADOBE_ORG_ID": account.org_id,
            "ADOBE_TARGET_TENANT": account.tenant,
            "ADOBE_TARGET_CLIENT": account.target_client,
            "MARKETO_BASE_URL": self.url,
            "MARKETO_CLIENT_ID": self.marketo.client_id,
            "MARKETO_CLIENT_SECRET": self.marketo.client_secret,
        }

    def stop(self) -> None:
        self.server.stop()


def serve(host: str, port: int, leads: Path | None = None) -> None:
    """``feedsync sandbox``: run until interrupted, after printing the variables to export."""
    from sandbox.local import check_free

    check_free(host, port, "--port")
    box = Sandbox.start(host, port)
    if leads is not None:
        from sandbox.local import load_leads

        print(f"# loaded {load_leads(box, leads)} Marketo leads from {leads}")
    print(f"# feedsync sandbox on {box.url} (Ctrl-C to stop). Point feedsync at it with:")
    for name, value in box.env().items():
        print(f"export {name}={value}")
    print(f"# what it received: curl {box.url}/_sandbox/adobe  {box.url}/_sandbox/marketo")
    if leads is None:
        print("# Marketo leads: none yet (--leads FILE loads yours)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        box.stop()
