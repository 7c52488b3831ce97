"""Recompute a delivery's tallies from the truth: every file record and, for the visitors a
verdict moved, their ledger entries. Slow on purpose (it reads what the tallies spare the
daily run); ``feedsync runs rebuild DELIVERY`` writes the result, and the fault suite compares
it with the tallies the runs kept.
"""

from __future__ import annotations

from collections import Counter

from feedsync.state import tally
from feedsync.state.ledger import VisitorState
from feedsync.state.ports import Ledger, RunState
from feedsync.state.records import FileRecord, FileState
from feedsync.storage import ObjectStore


def _visitors(state: ObjectStore, key: str) -> list[str]:
    from feedsync.daily.send import read_visitors

    return read_visitors(state, key)


def recount(
    state: ObjectStore, runs: RunState, ledger: Ledger, run: str, rsid: str
) -> dict[str, dict[str, int]]:
    """Counter name -> counts, as the runs should have kept them."""
    out: dict[str, Counter[str]] = {}
    for record in runs.files(run):
        if record.state is FileState.BUILT:
            continue
        counts = out.setdefault(tally.tally(record.destination), Counter())
        # visitors re-sent by ``retry --rejected`` are counted by their new file
        counts.update(files_sent=1, visitors_sent=record.visitors - record.requeued)
        if record.state is FileState.STUCK:
            counts.update(files_stuck=1, visitors_stuck=record.visitors)
        elif record.state is FileState.ACCEPTED:
            named = record.not_ingested + record.requeued  # as the verdict named them
            counts.update(files_accepted=1, visitors_accepted=record.visitors - named,
                          not_ingested=record.not_ingested, rows_skipped=record.skipped_rows,
                          unknown_which=max(0, record.skipped_rows - named))  # fmt: skip
            batch = out.setdefault(tally.batch(record.claim, record.destination), Counter())
            batch["accepted"] += 1
        elif record.state is FileState.FAILED:
            moved = _moved(state, ledger, rsid, record)
            counts.update(files_failed=1, visitors_failed=record.visitors,
                          given_up=moved["given_up"],
                          awaiting_resend=0 if record.resolved else moved["retry"])  # fmt: skip
    return {name: {k: v for k, v in c.items()} for name, c in out.items()}


def _moved(state: ObjectStore, ledger: Ledger, rsid: str, record: FileRecord) -> Counter[str]:
    """What a verdict on ``record`` left in the ledger, for the visitors it still owns."""
    visitors = _visitors(state, record.visitors_key)
    entries = ledger.entries(rsid, record.destination, visitors)
    counts: Counter[str] = Counter()
    for entry in entries.values():
        if entry.claim != record.claim:
            continue
        if entry.state is VisitorState.GIVEN_UP and entry.file == record.file:
            counts["given_up"] += 1
        elif entry.state is VisitorState.RETRY:
            counts["retry"] += 1
    return counts


def differences(kept: dict[str, dict[str, int]], truth: dict[str, dict[str, int]]) -> list[str]:
    """Where the kept tallies depart from the recount (fields at 0 may be absent)."""
    out = []
    for name in sorted(set(kept) | set(truth)):
        a, b = kept.get(name, {}), truth.get(name, {})
        for field in sorted(set(a) | set(b)):
            if a.get(field, 0) != b.get(field, 0):
                out.append(f"{name}.{field}: kept {a.get(field, 0)}, truth {b.get(field, 0)}")
    return out


def rebuild(state: ObjectStore, runs: RunState, ledger: Ledger, run: str, rsid: str) -> list[str]:
    """Write the recount over the kept tallies; what differed."""
    kept = {**runs.counters(run, "tally#"), **runs.counters(run, "batch#")}
    truth = recount(state, runs, ledger, run, rsid)
    for name in set(kept) | set(truth):
        runs.set_counter(run, name, truth.get(name, {}))
    return differences(kept, truth)
