"""Where everything lives in the state bucket: the one place both steps take keys from.

A delivery's *key* is its feed folder and id, e.g. ``adobe/acmeprod/acmeprod_2026-11-20``::

    results/<key>/<file>.json                 per-file parse result (written last)
    results/<key>/<file>.<md5>.visitors.gz    its sorted "id<TAB>P|K" visitor stream
    deliveries/<key>.json                     delivery record (the parse step's verdict)
    enriched/<key>                            the daily run finished this content generation
    todo/<key>                                the delivery has work for the daily run (an index:
                                              the run lists todo/, never every marker)
    reports/<run>.json, reports/<run>.html    the daily run's report (run = key, or dry-run/...)
    uploads/<run>/<destination>/<file>        every file sent to (or, dry, built for) Adobe
    uploads/<run>/<destination>/<file>.visitors   the visitors in it, one per line
    uploads/<run>/batches/<walk>/<n>.ids          a batch's visitor ids (a resume repeats them)
    uploads/<run>/batches/<walk>/<n>.<destination>.refused.jsonl
                                              rows refused (mapping, destination rules), why
    uploads/<run>/requeue/<stamp>.ids         visitors an operator's ``feedsync retry`` sends again
    runs/<time>-<invocation>.json             what each daily-run invocation did
    config/mapping.json                       the mapping file (MAPPING_KEY)
"""

from __future__ import annotations

from collections.abc import Iterable

RESULTS = "results/"
DELIVERIES = "deliveries/"
ENRICHED = "enriched/"
TODO = "todo/"
REPORTS = "reports/"
UPLOADS = "uploads/"
DRY_RUNS = "dry-run/"
RUNS = "runs/"
MAPPING = "config/mapping.json"


class StateLayout:
    """Key builders; every method is pure, so tests and the CLI can use them as well."""

    @staticmethod
    def delivery_key(folder: str, delivery_id: str) -> str:
        return f"{folder}{delivery_id}"

    @staticmethod
    def summary(key: str, file_name: str) -> str:
        return f"{RESULTS}{key}/{file_name}.json"

    @staticmethod
    def visitors(key: str, file_name: str, md5: str) -> str:
        return f"{RESULTS}{key}/{file_name}.{md5}.visitors.gz"

    @staticmethod
    def record(key: str) -> str:
        return f"{DELIVERIES}{key}.json"

    @staticmethod
    def keys_of_records(object_keys: Iterable[str]) -> list[str]:
        """Delivery keys from a listing of ``deliveries/``."""
        return [
            k[len(DELIVERIES) : -len(".json")]
            for k in object_keys
            if k.startswith(DELIVERIES) and k.endswith(".json")
        ]

    @staticmethod
    def normalise_key(text: str) -> str:
        """Accept ``deliveries/<key>.json`` or ``<key>`` from a user or an event."""
        return text.removeprefix(DELIVERIES).removesuffix(".json")

    @staticmethod
    def enriched(key: str) -> str:
        return f"{ENRICHED}{key}"

    @staticmethod
    def todo(key: str = "") -> str:
        """The index of deliveries with work (the daily run lists it; ``todo/`` alone: all)."""
        return f"{TODO}{key}"

    @staticmethod
    def run(key: str, dry_run_id: str | None) -> str:
        """A run's name: the delivery key, or under ``dry-run/<id>/`` for a dry run."""
        return key if dry_run_id is None else f"{DRY_RUNS}{dry_run_id}/{key}"

    @staticmethod
    def report(run: str, suffix: str = ".json") -> str:
        return f"{REPORTS}{run}{suffix}"

    @staticmethod
    def upload(run: str, destination: str, file_name: str) -> str:
        return f"{UPLOADS}{run}/{destination}/{file_name}"

    @staticmethod
    def batch_ids(run: str, walk: str, number: int) -> str:
        """A batch's visitor ids, stored before the batch starts (what a resume repeats)."""
        return f"{UPLOADS}{run}/batches/{walk}/{number:05d}.ids"

    @staticmethod
    def refused(run: str, walk: str, number: int, destination: str) -> str:
        """The rows of a batch one destination did not get, with the reason (JSON lines)."""
        return f"{UPLOADS}{run}/batches/{walk}/{number:05d}.{destination}.refused.jsonl"

    @staticmethod
    def refused_prefix(run: str) -> str:
        return f"{UPLOADS}{run}/batches/"

    @staticmethod
    def requeue(run: str, stamp: str = "") -> str:
        """Visitors an operator asked to send again (``feedsync retry``), one id a line."""
        return f"{UPLOADS}{run}/requeue/" + (f"{stamp}.ids" if stamp else "")

    @staticmethod
    def run_log(stamp: str, owner: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in owner)
        return f"{RUNS}{stamp}-{safe}.json"

    @staticmethod
    def upload_visitors(upload_key: str) -> str:
        return f"{upload_key}.visitors"
