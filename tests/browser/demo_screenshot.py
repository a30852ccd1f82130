"""Take the README's dashboard screenshot (docs/dashboard.png) during a small live demo.

    .venv/bin/python -m tests.browser.demo_screenshot

Starts `votescore worker` and `votescore dashboard` on a namespace of their own, loads
2,000 generated voters, publishes simulated field evidence, shows one voter's lookup,
saves the page, then stops everything and removes the demo's keys and topics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from playwright.sync_api import sync_playwright

from streams.config import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.helpers import dashboard_answers
from tests.conftest import ROOT, cleanup, free_port, votescore, wait_for

OUT = ROOT / "docs" / "dashboard.png"


def start(settings: Settings, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings.to_env()},
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def screenshot(url: str, settings: Settings, voters: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.wait_for_selector("#feed-status.on")
        simulator = start(
            settings,
            voters.with_suffix(".sim.log"),
            "simulate",
            "--voters",
            str(voters),
            "--rate",
            "40",
            "--count",
            "1200",
            "--seed",
            "7",
        )
        page.wait_for_selector("#feed li:nth-child(40)", timeout=120_000)
        page.wait_for_timeout(8_000)  # let throughput and lag panels gather a few readings
        # The voter with most evidence behind their support has the most to explain.
        page.fill("#segment input[name=min_evidence]", "2")
        page.click("#segment button")
        page.wait_for_function(
            "() => Number(document.querySelector('#targets tbody td:last-child')?.textContent) >= 2"
        )
        page.click("#targets tbody tr:first-child a.voter")
        page.wait_for_selector("#voter-history .main-svg")
        OUT.parent.mkdir(exist_ok=True)
        page.screenshot(path=OUT, full_page=True)
        simulator.terminate()
        browser.close()


def main() -> None:
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="votescore-demo-"))
    settings = Settings.from_env(
        topic_prefix=f"demo{tag}-",
        redis_namespace=f"demo{tag}:",
        app_id=f"demo{tag}",
        data_dir=work / "worker",
        web_port=free_port(),
        dashboard_port=free_port(),
    )
    voters = work / "voters.parquet"
    votescore(settings, "voters", "generate", "--count", "2000", "--out", str(voters))
    votescore(settings, "voters", "load", str(voters))
    worker = start(settings, work / "worker.log", "worker")
    dashboard = start(settings, work / "dashboard.log", "dashboard")
    try:
        url = f"http://127.0.0.1:{settings.dashboard_port}"
        wait_for(lambda: dashboard_answers(url), timeout=60, what="the dashboard")
        screenshot(url, settings, voters)
        print(f"saved {OUT}")
    finally:
        for process in (dashboard, worker):
            process.terminate()
            process.wait(timeout=60)
        cleanup(settings)


if __name__ == "__main__":
    main()
