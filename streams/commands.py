"""Core subcommands: worker, voters, simulate, score, topics."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from models.population import SCORES
from models.voters import generate_voters, public_attributes, read_voters, write_voters
from streams.config import Settings
from streams.logs import get_logger, kv

log = get_logger(__name__)


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser("worker", help="run a scoring worker (Faust)")
    worker.set_defaults(func=run_worker)

    topics_cmd = subparsers.add_parser("topics", help="create votescore's Kafka topics")
    topics_cmd.set_defaults(func=create_topics)

    voters = subparsers.add_parser("voters", help="generate or load a voter file")
    voters_sub = voters.add_subparsers(dest="voters_command", required=True)
    generate = voters_sub.add_parser("generate", help="write a synthetic voter file")
    generate.add_argument("--count", type=int, default=10_000)
    generate.add_argument("--out", type=Path, required=True, help=".parquet or .csv")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--extra-columns", type=int, default=50)
    generate.set_defaults(func=generate_file)
    load = voters_sub.add_parser("load", help="load a voter file into Redis and score it")
    load.add_argument("file", type=Path)
    load.set_defaults(func=load_file)

    simulate = subparsers.add_parser("simulate", help="publish simulated field evidence")
    simulate.add_argument("--voters", type=Path, required=True, help="a generated voter file")
    simulate.add_argument("--rate", type=float, default=100.0, help="events per second")
    simulate.add_argument("--count", type=int, default=1_000)
    simulate.add_argument("--seed", type=int, default=None, help="default: a fresh one")
    simulate.set_defaults(func=run_simulation)

    score = subparsers.add_parser("score", help="print a voter's live scores from Redis")
    score.add_argument("voter_id")
    score.add_argument("--json", action="store_true")
    score.set_defaults(func=show_score)


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import OpsWorker, create_app
    from streams.kafka_admin import ensure_topics

    ensure_topics(settings)
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    app, _worker = create_app(settings)
    log.info("Starting worker %s", kv(app=settings.app_id, kafka=settings.kafka_bootstrap))
    # Faust's own INFO lines narrate every service start; ours say what ops need.
    OpsWorker(app, loglevel="warn", quiet=True).execute_from_commandline()
    return 0


def create_topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka_admin import ensure_topics

    created = ensure_topics(settings)
    print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))
    return 0


def generate_file(args: argparse.Namespace, settings: Settings) -> int:
    table = generate_voters(args.count, seed=args.seed, extra_columns=args.extra_columns)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_voters(table, args.out)
    print(f"wrote {table.num_rows} voters to {args.out}")
    return 0


def load_file(args: argparse.Namespace, settings: Settings) -> int:
    table = read_voters(args.file)
    count = asyncio.run(_load_and_score(settings, table))
    print(f"loaded and scored {count} voters from {args.file}")
    return 0


def voter_rows(table: Any) -> list[dict[str, Any]]:
    """Public voter-file rows, each with the ids of the rest of its household."""
    rows = [public_attributes(row) for row in table.to_pylist()]
    households: dict[Any, list[str]] = {}
    for row in rows:
        if row.get("household_id") is not None:
            households.setdefault(row["household_id"], []).append(row["voter_id"])
    for row in rows:
        members = households.get(row.get("household_id"), [])
        row["household_members"] = [m for m in members if m != row["voter_id"]]
    return rows


async def _load_and_score(settings: Settings, table: Any) -> int:
    from models.population import PopulationModels
    from streams.kafka_admin import prepare_topics
    from streams.modelsync import read_latest_snapshot
    from streams.redisio import RedisStore
    from streams.sweep import Sweeper

    await prepare_topics(settings)
    store = await RedisStore.open(settings)
    try:
        count = await store.load_voters(voter_rows(table))
        latest = await _latest_models(settings, read_latest_snapshot)
        models = latest[0] if latest else PopulationModels()
        bar = tqdm(total=count, desc="scoring voters", unit="voter", disable=None)
        sweeper = Sweeper(store, partitions=settings.partitions)
        await sweeper.sweep(models, progress=lambda r: bar.update(r.seen - bar.n))
        bar.close()
        return count
    finally:
        await store.close()


async def _latest_models(settings: Settings, reader: Any) -> Any:
    try:
        return await reader(settings)
    except Exception as exc:  # no broker is no reason not to load: score with fresh models
        log.warning(
            "No model snapshot read; scoring with fresh models %s", kv(error=type(exc).__name__)
        )
        return None


def run_simulation(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulate import publish

    voters = read_voters(args.voters)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    bar = tqdm(total=args.count, desc="publishing", unit="event", disable=None)
    sent = publish(
        settings,
        voters,
        count=args.count,
        rate=args.rate,
        seed=seed,
        on_progress=lambda n: bar.update(1),
    )
    bar.close()
    print(f"published {sent} events (seed {seed})")
    return 0


def show_score(args: argparse.Namespace, settings: Settings) -> int:
    from streams.redisio import RedisStore

    async def fetch() -> dict[str, str]:
        store = await RedisStore.open(settings)
        try:
            return await store.voter(args.voter_id)
        finally:
            await store.close()

    voter = asyncio.run(fetch())
    if not voter:
        print(f"votescore: no scores for voter {args.voter_id}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(voter, option=orjson.OPT_INDENT_2).decode())
        return 0
    version, last = voter.get("model_version"), voter.get("last_event")
    print(f"voter {args.voter_id}  (model v{version}, last event {last})")
    for name in SCORES:
        print(
            f"  {name:<11}{voter.get(name, '?'):>4}   80% interval {voter.get(name + '_low')}-"
            f"{voter.get(name + '_high')}   evidence {voter.get(name + '_n', 0)}"
        )
    return 0
