"""Base URLs of the Adobe services, each overridable (proxies, regional hosts, the sandbox)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from feedsync.urls import service_url

_DEFAULTS = {
    "ims": ("ADOBE_IMS_URL", "https://ims-na1.adobelogin.com"),
    "analytics": ("ADOBE_ANALYTICS_URL", "https://analytics.adobe.io"),
    "bdia": ("ADOBE_BDIA_URL", "https://analytics-collection.adobe.io"),
    "target": ("ADOBE_TARGET_URL", "https://mc.adobe.io"),
    "target_edge": ("ADOBE_TARGET_EDGE_URL", "https://{client}.tt.omtrdc.net"),
    "cja": ("ADOBE_CJA_URL", "https://cja.adobe.io"),
    "platform": ("ADOBE_PLATFORM_URL", "https://platform.adobe.io"),
}


def _checked(name: str, value: str) -> str:
    return service_url(name, value)


@dataclass(frozen=True)
class AdobeEndpoints:
    ims: str
    analytics: str
    bdia: str
    target: str
    target_edge: str
    cja: str
    platform: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AdobeEndpoints:
        values = {
            field: _checked(var, env.get(var, "").strip() or default)
            for field, (var, default) in _DEFAULTS.items()
        }
        return cls(**values)

    def target_edge_for(self, client: str) -> str:
        return self.target_edge.replace("{client}", client)
