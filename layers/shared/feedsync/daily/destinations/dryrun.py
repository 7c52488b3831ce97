"""A dry run: the real file builders, a sender that sends nothing and asks Adobe nothing."""

from __future__ import annotations

from feedsync.daily.destinations.base import PENDING, AdobeVerdict, Batch, UploadFile
from feedsync.state.records import JobRef


class DrySender:
    resend_is_harmless = True

    def __init__(self, destination: str) -> None:
        self.destination = destination

    def send(self, batch: Batch, upload: UploadFile) -> JobRef:
        return JobRef(file=upload.name, destination=self.destination, dry_run=True)

    def find(self, batch: Batch, upload: UploadFile) -> JobRef | None:
        return None

    def verdict(self, rsid: str, job: JobRef) -> AdobeVerdict:
        return AdobeVerdict(PENDING, "dry run")
