"""`make demo`: the whole pipeline on generated data - moto for AWS, the sandbox for Adobe and
Marketo.

1. Generates a realistic 3-file delivery (escapes, excluded hits, duplicates, visitors pending in
   one file and known in another), uploads it the way Adobe does (data files, lookup archive,
   manifest last) and hands each S3 event to the real ParseFeedFunction handler.
2. Puts 10% of the pending visitors into the Marketo stand-in, then runs the real
   EnrichUploadFunction handler against the Adobe stand-in, and prints what was matched and
   uploaded - and runs it again to show that nothing is sent twice.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[1]
FEED, FOLDER = "feedsync-feed-demo", "adobe/acmeprod/"


def _aep_mapping(box: object, world: object) -> None:
    """The Experience Platform dataset the aep destination writes to (as `aep setup` makes)."""
    from sandbox.world import MAPPING

    fields = {"Account_Type__c": "_acme.crm.accountType", "Industry": "_acme.crm.industry"}
    dataset = box.platform.add_dataset(  # type: ignore[attr-defined]
        {"_acme.crm.accountType": "string", "_acme.crm.industry": "string"}
    )
    world.put_mapping(  # type: ignore[attr-defined]
        {**MAPPING, "aep": {"dataset_id": dataset, "sandbox": "prod", "fields": fields}}
    )


def _aep_ingested(box: object) -> list[str]:
    """ECIDs of the records in batches Platform took (success)."""
    platform = box.platform  # type: ignore[attr-defined]
    out = []
    for batch_id, batch in platform.batches.items():
        if batch["status"] == "success":
            for data in platform.files[batch_id].values():
                out += [json.loads(x)["identityMap"]["ECID"][0]["id"] for x in data.splitlines()]
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--destinations", default="datasources", help="e.g. aep or datasources,aep")
    destinations = parser.parse_args(argv).destinations
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="feedsync",
        POWERTOOLS_METRICS_NAMESPACE="feedsync",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    os.environ.pop("AWS_PROFILE", None)
    import boto3
    from moto import mock_aws

    from feedsync.cli import PARSE_FIELDS
    from feedsync.state.records import FIGURES
    from sandbox import feedgen
    from sandbox.lambda_context import FakeLambdaContext
    from sandbox.run import Sandbox
    from sandbox.world import STATE_BUCKET, World

    work = ROOT / ".demo"
    shutil.rmtree(work, ignore_errors=True)
    rng = random.Random(2026)
    files = [feedgen.random_hits(20_000, rng, 6_000) for _ in range(3)]
    files[2].extend(files[0][:500])  # Adobe re-sends some hits
    delivery = feedgen.make_delivery(work / "feed", files)
    template = json.loads((ROOT / "events" / "s3-put-datafile.json").read_text())
    box = Sandbox.start(bdia_interval=0.0, bdia_group_interval=0.0)

    with mock_aws():
        world = World(box, work / "world", env={"BATCH_SIZE": "2000", "DESTINATIONS": destinations})
        if "aep" in destinations:
            _aep_mapping(box, world)
        os.environ["STATE_BUCKET"] = STATE_BUCKET
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=FEED)
        sys.path.insert(0, str(ROOT / "functions" / "parse_feed"))
        handler = importlib.import_module("parse_feed")
        print("== 1. parse: Adobe delivers the feed; ParseFeedFunction handles each object")
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
            print(f"   {name:45s} -> {result['status']}")
        key = f"{FOLDER}{delivery.rsid}_{delivery.day}"
        record = json.loads(
            s3.get_object(Bucket=STATE_BUCKET, Key=f"deliveries/{key}.json")["Body"].read()
        )
        print("   " + json.dumps({k: record[k] for k in PARSE_FIELDS}))
        expected = len(delivery.expected.final_pending)
        parse_ok = expected == record["visitors_pending"]
        print(
            f"   independent count of pending visitors: {expected} ({'matches' if parse_ok else 'DIFFERS'})"
        )

        print("== 2. enrich: 10% of them are in Marketo; EnrichUploadFunction runs on its schedule")
        pending = world.pending(record)
        leads = world.add_leads(pending[::10])
        world.invoke({"scheduled_time": "2026-11-21T06:00:00Z"})
        report = world.report(key)
        figures = (*FIGURES, "crm_calls")
        print("   " + json.dumps({"status": report["status"], **{k: report[k] for k in figures}}))
        enrich_ok = report["status"] == "complete"
        if "datasources" in destinations:
            jobs = report["jobs"].get("datasources", [])
            print(
                f"   Data Sources jobs: {len(jobs)} files, e.g. {jobs[0]['file']} -> job {jobs[0]['job_id']} ({jobs[0]['status']})"
            )
            example = next(iter(box.adobe.datasource_files.values())).decode().splitlines()
            print("   first lines of the first upload file:")
            for line in example[:4]:
                print("     " + line.replace("\t", " | "))
            uploaded = world.uploaded_rows()
            enrich_ok = enrich_ok and sorted(r[1] for r in uploaded) == sorted(leads)
            print(
                f"   Adobe received {len(uploaded)} rows for the {len(leads)} matched visitors ({'exactly' if enrich_ok else 'MISMATCH'})"
            )
        if "aep" in destinations:
            batches = box.platform.batches
            sample = next(iter(box.platform.files[next(iter(batches))].values())).splitlines()[0]
            print(
                f"   Experience Platform: {len(batches)} batches (one JSON Lines file each), "
                f"completed; a record: {sample.decode()}"
            )

        print(
            "== 3. the same run again (a retried schedule, a re-run backfill): nothing is sent twice"
        )
        calls = len(box.marketo.call_times)
        jobs_before = len(box.adobe.datasource_jobs) + len(box.platform.batches)
        again = world.invoke({"delivery": key})
        new_uploads = len(box.adobe.datasource_jobs) + len(box.platform.batches) - jobs_before
        rerun_ok = len(box.marketo.call_times) == calls and new_uploads == 0
        print(
            f"   {again['deliveries'][0]['status']}: {len(box.marketo.call_times) - calls} new Marketo calls, "
            f"{new_uploads} new uploads"
        )
        print("== 4. the next day's run reads Adobe's verdicts; the report follows them")
        world.invoke({})
        world.invoke({})  # Data Sources jobs go uploaded -> processing -> success
        world.invoke({})  # Platform batches: staged -> processing -> success
        final = world.report(key)
        print(f"   {final['outcome']}; report status {final['status']}")
        if "aep" in destinations:
            ingested = _aep_ingested(box)
            statuses = sorted({b["status"] for b in box.platform.batches.values()})
            aep_ok = sorted(ingested) == sorted(leads)
            enrich_ok = enrich_ok and aep_ok
            print(
                f"   Platform batches {', '.join(statuses)}: {len(ingested)} records for the "
                f"{len(leads)} matched visitors ({'exactly' if aep_ok else 'MISMATCH'})"
            )
        out = ROOT / ".demo"  # the moto bucket is gone when this exits: keep the pages
        for name in world.state.list("reports/"):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(world.state.get(name) or b"")
        print(f"   report: {out / 'reports' / key}.html (and .json)")
        print(f"   status page: {out / 'reports' / 'index.html'} (open it in a browser)")
    box.stop()
    return 0 if parse_ok and enrich_ok and rerun_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
