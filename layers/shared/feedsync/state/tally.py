"""Tallies: the counts a delivery's report shows, kept as files are sent and Adobe decides on
them - never re-derived from every visitor's ledger entry (that is ``rebuild``'s job, on an
operator's request, and the fault suite's check).

One counter item per destination (``tally#<destination>``) under the delivery's run key, and one
per batch and destination (``batch#<walk>#NNNNN#<destination>``: files Adobe accepted, which a
later day's lookup reads to tell "accepted" from "in flight"). Each change is added in the same
DynamoDB transaction as the file record transition it counts (``RunState.save_file``), so a
count moves exactly when the truth does.

    files_sent files_accepted files_failed files_stuck
    visitors_sent visitors_accepted visitors_failed visitors_stuck
    awaiting_resend given_up not_ingested rows_skipped unknown_which
"""

from __future__ import annotations

from feedsync.state.records import FileRecord, FileState

Counts = dict[str, int]


def tally(destination: str) -> str:
    return f"tally#{destination}"


def batch(claim: str, destination: str) -> str:
    """The batch counter of the batch ``claim`` names (its walk and number)."""
    rest = claim.rpartition("@")[2]
    return f"batch#{rest}#{destination}"


def sent(record: FileRecord) -> list[tuple[str, Counts]]:
    return [(tally(record.destination), {"files_sent": 1, "visitors_sent": record.visitors})]


def verdict(before: FileRecord, after: FileRecord) -> list[tuple[str, Counts]]:
    """What a verdict changes: ``before`` as it was, ``after`` with Adobe's word."""
    counts: Counts = {}
    if before.state is FileState.STUCK and after.state is not FileState.STUCK:
        counts.update(files_stuck=-1, visitors_stuck=-before.visitors)
    if after.state is FileState.STUCK and before.state is not FileState.STUCK:
        counts.update(files_stuck=1, visitors_stuck=after.visitors)
    out = []
    if after.state is FileState.ACCEPTED:
        counts.update(files_accepted=1, visitors_accepted=after.visitors - after.not_ingested,
                      not_ingested=after.not_ingested, rows_skipped=after.skipped_rows,
                      unknown_which=max(0, after.skipped_rows - after.not_ingested))  # fmt: skip
        out.append((batch(after.claim, after.destination), {"accepted": 1}))
    elif after.state is FileState.FAILED:
        counts.update(files_failed=1, visitors_failed=after.visitors,
                      awaiting_resend=after.released, given_up=after.given_up)  # fmt: skip
    return [(tally(after.destination), counts), *out]


def resolved(record: FileRecord) -> list[tuple[str, Counts]]:
    """A failed file's released visitors are all planned again (or moved on)."""
    return [(tally(record.destination), {"awaiting_resend": -record.released})]


def requeued(record: FileRecord, given_up: int) -> list[tuple[str, Counts]]:
    """An operator's ``feedsync retry``: given-up visitors of ``record`` wait for a re-send."""
    return [(tally(record.destination), {"given_up": -given_up, "awaiting_resend": given_up})]
