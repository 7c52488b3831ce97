"""``make screenshots``: the status page with an enriched, a given-up, a failed and a waiting
day (moto + the stand-ins, through the daily handler and the CLI), the section a failed day
links to, and a given-up day's report - rendered by headless Chromium into docs/.

Needs Chromium (Debian: ``apt-get install chromium``); says so and stops without it.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _installation(out: Path) -> None:
    from moto import mock_aws

    from feedsync.cli import main
    from sandbox import feedgen
    from sandbox.run import Sandbox
    from sandbox.world import World

    box = Sandbox.start(bdia_interval=0.0, bdia_group_interval=0.0)
    try:
        with mock_aws():
            world = World(box, Path(tempfile.mkdtemp(prefix="feedsync-shots-")))
            world.env["UPLOAD_MAX_ATTEMPTS"] = "2"
            os.environ.update(world.env)
            rng = random.Random(7)

            def day(when: str) -> None:
                record = world.deliver([feedgen.random_hits(300, rng, 90)], when)
                world.add_leads(world.pending(record)[::3])

            day("2026-11-17")  # enriched: accepted by Adobe
            for _ in range(4):
                world.invoke({})
            day("2026-11-18")  # given up: Adobe fails every job
            world.box.adobe.fail_jobs.add("feedsync_")
            for _ in range(8):
                world.invoke({})
            world.box.adobe.fail_jobs.clear()
            world.deliver_to_bucket([feedgen.random_hits(200, rng, 60)], "2026-11-19",
                                    corrupt=True)  # fmt: skip
            day("2026-11-20")  # verified, waiting for the daily run
            main(["status", "--days", "3650", "--html", str(out / "status.html")])
            report = world.state.get("reports/adobe/acmeprod/acmeprod_2026-11-18.html")
            (out / "given_up.html").write_bytes(report or b"")
    finally:
        box.stop()


def _shoot(chromium: str, page: Path, png: Path, size: str) -> None:
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size}", "--virtual-time-budget=3000", f"--screenshot={png}",
         page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("screenshots: no Chromium on this machine (Debian: apt-get install chromium)")
        return 1
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "local"),
                        ("AWS_SECRET_ACCESS_KEY", "local")):  # fmt: skip
        os.environ.setdefault(name, value)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _installation(out)
        # the section a failed day's row links to (#d0), seen through a frame scrolled there
        (out / "failed.html").write_text('<!doctype html><body style="margin:0"><iframe '
                                         'src="status.html#d0" style="width:1300px;'
                                         'height:650px;border:0"></iframe>')  # fmt: skip
        DOCS.mkdir(exist_ok=True)
        _shoot(chromium, out / "status.html", DOCS / "status-page.png", "1300,1250")
        _shoot(chromium, out / "failed.html", DOCS / "status-failed-day.png", "1300,650")
        _shoot(chromium, out / "given_up.html", DOCS / "report-given-up.png", "1300,1400")
    print(f"screenshots: {', '.join(p.name for p in sorted(DOCS.glob('*.png')))} in {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
