"""No StateTable item grows with the data (DynamoDB's limit is 400 KB an item): the largest walk,
plan, in-flight record, file record and ledger entry the code can write, built from the record
types with every field at its bound, each well under the limit."""

from __future__ import annotations

import json

from feedsync.daily.destinations.uploadfile import MAX_PART_BYTES
from feedsync.daily.send import Plan, PlannedFile
from feedsync.state.ledger import LedgerEntry, VisitorState, verdict_moves
from feedsync.state.records import (
    MAX_REASONS,
    MAX_REJECT_SAMPLES,
    MAX_TEXT,
    BatchFigures,
    BatchKind,
    CatchUp,
    FileRecord,
    InFlight,
    JobRef,
    Rejected,
    Walk,
)

LIMIT = 400 * 1024
KEY = "adobe/" + "f" * 200 + "/acmeprod_2026-11-20-235959"  # a long feed folder
MAX_BATCH = 1_000_000  # BATCH_SIZE's upper bound (config.py)
MAX_ROW = 4_096  # Data Sources: bytes a row


def _size(record: object) -> int:
    return len(json.dumps(record, sort_keys=True, default=str).encode())


def _flooded() -> BatchFigures:
    figures = BatchFigures(pending=MAX_BATCH, already_enriched=MAX_BATCH)
    # a flood of refusals, each with a different long reason and a long visitor id
    figures.add_rejected(
        [Rejected("v" * 5_000 + str(n), f"reason {n}: " + "x" * 5_000) for n in range(10_000)]
    )
    figures.earlier = dict.fromkeys(("accepted", "in_flight", "given_up", "not_found"), 10**9)
    return figures


def test_refusals_are_clipped_and_their_reasons_capped() -> None:
    figures = _flooded()
    assert figures.rejected == 10_000
    assert len(figures.rejected_samples) == MAX_REJECT_SAMPLES
    assert len(figures.rejected_reasons) == MAX_REASONS
    assert sum(figures.rejected_reasons.values()) == 10_000
    assert max(len(r) for r in figures.rejected_reasons) <= MAX_TEXT
    assert max(len(s.visitor) + len(s.reason) for s in figures.rejected_samples) <= 2 * MAX_TEXT


def test_the_largest_walk_fits_an_item() -> None:
    walk = Walk(
        "g" * 16,
        walk_id="abcdef",
        cursor="9" * MAX_TEXT,
        next_batch=10**9,
        destinations=("datasources", "bdia", "target", "aep"),
        catchup=CatchUp(("bdia", "target", "aep"), "9" * MAX_TEXT, "8" * MAX_TEXT),
        counted=[f"abcdef#{n:05d}" for n in range(1_000)],  # far more than can be in flight
        figures=_flooded(),
        retries=_flooded(),
        version=10**9,
    )
    size = _size(walk.to_json())
    print(f"largest walk: {size:,} bytes")
    # samples and reasons of the walk and its re-sends (~90 KB), 1,000 batches in flight
    assert size < LIMIT // 2


def test_the_largest_plan_fits_an_item() -> None:
    # the most parts one batch can make: BATCH_SIZE rows of the longest row Adobe takes
    parts = -(-MAX_BATCH * MAX_ROW // MAX_PART_BYTES)
    upload = f"uploads/{KEY}/datasources/feedsync_acmeprod_2026-11-20_gdeadbeef_wabcdef_b99999"
    plan = Plan(
        files=[
            PlannedFile(f"{upload}_p{n}.txt".rsplit("/", 1)[-1], n, f"{upload}_p{n}.txt", MAX_BATCH)
            for n in range(parts)
        ],
        rejected=MAX_BATCH,
        refused_key=f"uploads/{KEY}/batches/abcdef/99999.datasources.refused.jsonl",
        jobs=[
            JobRef(
                f"part {n}",
                "datasources",
                10**12,
                "processing",
                MAX_BATCH,
                "feedsync-" + "k" * 32,
                "https://" + "t" * 200,
                None,
                upload,
                3,
            )
            for n in range(parts)
        ],
        sending={"file": upload, "at": 1.8e9},
    )
    size = _size(plan.to_json())
    print(f"largest plan ({parts} parts): {size:,} bytes")
    assert size < LIMIT // 2


def test_the_largest_in_flight_and_file_records_fit_an_item() -> None:
    batch = InFlight("abcdef", "g" * 16, 99_999, BatchKind.CATCHUP,
                     f"uploads/{KEY}/batches/abcdef/99999.ids",
                     ("datasources", "bdia", "target", "aep"), "9" * MAX_TEXT, True)  # fmt: skip
    record = FileRecord(
        "datasources", "f" * 200, KEY, "acmeprod", "g" * 16, 99_999, f"{KEY}@abcdef#99999",
        f"uploads/{KEY}/datasources/" + "f" * 200, f"uploads/{KEY}/datasources/" + "f" * 200,
        MAX_BATCH, JobRef("f" * 200, "datasources", 10**12, "failure", MAX_BATCH),
        detail="Adobe says " + "why " * 100_000, adobe_status="failure", verdict_at="x" * 30,
    )  # fmt: skip
    sizes = _size(batch.to_json()), _size(record.to_json())
    print(f"in-flight record: {sizes[0]:,} bytes; file record: {sizes[1]:,} bytes")
    assert max(sizes) < 8 * 1024


def test_a_ledger_entry_keeps_a_clipped_reason() -> None:
    current = LedgerEntry(VisitorState.SENT, KEY, f"{KEY}@abcdef#00001", "f.txt", 1)
    (move,) = verdict_moves({"v": current}, ["v"], current.claim, "f.txt", False, 3,
                            "Adobe: failure (" + "why " * 100_000 + ")")  # fmt: skip
    assert move.entry.state is VisitorState.RETRY
    assert len(move.entry.reason) <= MAX_TEXT
