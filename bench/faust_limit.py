"""Faust alone: how fast one worker process hands a backlog to an agent that does nothing.

The raw limit beside ``worker.sustained_1``: the same ``take_events`` batching, the same
monitor and broker settings as the scoring agent, and no work per batch. Run by
``bench/throughput.py`` in a process of its own; prints ``rate: <events per second>``,
timed from the first batch to the last, then stops its worker.

Usage: ``python bench/faust_limit.py TOPIC [TOPIC ...] --expected N`` with the settings
(broker, app id, batch size and window) taken from the environment like a worker's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.app import OpsWorker, faust_app, raw_topic  # noqa: E402
from streams.config import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("topics", nargs="+")
    parser.add_argument("--expected", type=int, required=True)
    args = parser.parse_args()
    settings = Settings.from_env()

    app = faust_app(settings, f"{settings.app_id}-faust-limit")
    source = raw_topic(app, args.topics)
    seen = {"events": 0, "timed": 0, "first": 0.0}

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            if seen["events"]:
                seen["timed"] += len(events)  # the clock starts with the first batch
            else:
                seen["first"] = time.perf_counter()
            seen["events"] += len(events)
            if seen["events"] >= args.expected:
                elapsed = time.perf_counter() - seen["first"]
                print(f"rate: {seen['timed'] / elapsed:.0f}", flush=True)
                # Nothing to clean up (no state, offsets irrelevant): leave at once
                # rather than through Faust's shutdown, which waits for the group.
                os._exit(0)

    OpsWorker(app, loglevel="warn", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
