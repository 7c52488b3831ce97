"""`make demo`: the parse stage end to end on a generated delivery, in a moto S3.

Generates a realistic 3-file delivery (escapes, excluded hits, duplicates, visitors pending in
one file and known in another), uploads it the way Adobe does (data files, lookup archive,
manifest last), hands each S3 event to the real handler and prints the delivery record.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import random
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[1]
FEED, STATE, FOLDER = "feedsync-feed-demo", "feedsync-state-demo", "adobe/acmeprod/"


def main() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
        STATE_BUCKET=STATE,
        POWERTOOLS_SERVICE_NAME="feedsync",
        POWERTOOLS_METRICS_NAMESPACE="feedsync",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    import boto3
    from moto import mock_aws

    from feedsync.cli import PARSE_FIELDS
    from sandbox.lambda_context import FakeLambdaContext
    from tests import feedgen

    rng = random.Random(2026)
    files = [feedgen.random_hits(20_000, rng, 6_000) for _ in range(3)]
    files[2].extend(files[0][:500])  # Adobe re-sends some hits
    delivery = feedgen.make_delivery(ROOT / ".demo" / "feed", files)
    template = json.loads((ROOT / "events" / "s3-put-datafile.json").read_text())

    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (FEED, STATE):
            s3.create_bucket(Bucket=bucket)
        import sys

        sys.path.insert(0, str(ROOT / "functions" / "parse_feed"))
        handler = importlib.import_module("parse_feed")
        order = [n for n in delivery.files if n.endswith("lookup_data.tar.gz")]
        order += sorted(n for n in delivery.files if n.endswith(".tsv.gz"))
        order.append(delivery.manifest_name)
        for name in order:
            s3.put_object(Bucket=FEED, Key=FOLDER + name, Body=delivery.files[name])
            event = copy.deepcopy(template)
            event["Records"][0]["s3"]["bucket"]["name"] = FEED
            event["Records"][0]["s3"]["object"]["key"] = quote_plus(FOLDER + name, safe="/")
            result = handler.lambda_handler(event, FakeLambdaContext("ParseFeedFunction"))[
                "results"
            ][0]
            print(f"{name:45s} -> {result['status']}")
        key = f"deliveries/{FOLDER}{delivery.rsid}_{delivery.day}.json"
        record = json.loads(s3.get_object(Bucket=STATE, Key=key)["Body"].read())
    summary = {k: record[k] for k in PARSE_FIELDS}
    print(json.dumps(summary, indent=2))
    expected = len(delivery.expected.final_pending)
    print(
        f"independent count of pending visitors: {expected}  "
        f"({'matches' if expected == record['visitors_pending'] else 'DIFFERS'})"
    )
    print(f"delivery record: s3://{STATE}/{key}   local copy of the feed: {delivery.folder}")
    return 0 if expected == record["visitors_pending"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
