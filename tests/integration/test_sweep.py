"""The re-score sweep on real Redis: it follows new models and gives way to events."""

from __future__ import annotations

import asyncio

import pytest
import redis

from models.population import SCORES, PopulationModels
from models.voters import read_voters
from streams.config import Settings
from streams.redisio import HiredisPackingConnection, Keys, RedisStore
from streams.sweep import Sweeper, SweepReport
from tests.integration.redis_state import precinct_aggregates_from_voters, stored_aggregates

pytestmark = pytest.mark.integration


class Pauses:
    """Stands in for ``asyncio.sleep``: records each pause, still yields to the loop."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(0)


def trained_models() -> PopulationModels:
    models = PopulationModels()
    for n in range(200):
        models.learn_one({"age": (n % 7) / 3.0}, {"support": n % 2, "turnout": n % 3 == 0})
    return models


def test_while_events_flow_the_sweep_rests_so_events_get_the_rest_of_the_loop(
    settings: Settings, loaded_voters
):
    async def scenario() -> tuple[SweepReport, Pauses, list[float]]:
        store = await RedisStore.open(settings)
        pauses = Pauses()
        sweeper = Sweeper(
            store,
            partitions=settings.partitions,
            chunk=50,
            events_flowing=lambda: True,
            share=0.25,
            sleep=pauses,
        )
        report = await sweeper.sweep(trained_models())

        # One chunk's pacing on its own: 20 ms of work earns a 60 ms rest at a quarter.
        single = Pauses()
        sweeper.sleep = single
        await sweeper._pace(SweepReport(), worked=0.020)
        await store.close()
        return report, pauses, single.seen

    report, pauses, single = asyncio.run(scenario())

    assert report.rescored == 300  # every voter still re-scored
    assert len(pauses.seen) == 6  # 300 voters in chunks of 50
    assert all(pause > 0 for pause in pauses.seen)
    assert single == [pytest.approx(0.060)]


def test_idle_the_sweep_runs_flat_out_and_a_rate_limit_still_holds(
    settings: Settings, loaded_voters
):
    async def scenario() -> tuple[list[float], list[float]]:
        store = await RedisStore.open(settings)
        idle = Pauses()
        sweeper = Sweeper(store, partitions=settings.partitions, chunk=100, share=0.25, sleep=idle)
        await sweeper.sweep(trained_models())

        limited = Pauses()
        sweeper.sleep, sweeper.max_rate = limited, 100.0
        # 300 voters done in 1 s at 100 a second: 2 s ahead of the limit.
        await sweeper._pace(SweepReport(rescored=300, elapsed_s=1.0), worked=0.01)
        await store.close()
        return idle.seen, limited.seen

    idle, limited = asyncio.run(scenario())

    assert idle == [0.0]  # idle, one chunk four times the size: all 300 voters at once
    assert limited == [pytest.approx(2.0)]


def test_the_sweep_walks_every_voter_once_in_id_order(settings: Settings, loaded_voters):
    async def scenario() -> list[str]:
        store = await RedisStore.open(settings)
        # Chunks of 7 and index pages of 7 * 4 * 8: the walk crosses page boundaries.
        sweeper = Sweeper(store, partitions=settings.partitions, chunk=7)
        walked = [voter_id async for chunk in sweeper._chunks() for voter_id in chunk]
        await store.close()
        return walked

    walked = asyncio.run(scenario())

    loaded = [row["voter_id"] for row in read_voters(loaded_voters).to_pylist()]
    assert walked == sorted(loaded)


def test_a_voter_an_event_re_scored_after_the_read_keeps_the_events_scores(
    settings: Settings, loaded_voters, redis_client
):
    keys = Keys(settings.redis_namespace)
    models = trained_models()

    async def scenario() -> tuple[SweepReport, str]:
        store = await RedisStore.open(settings)
        sweeper = Sweeper(store, partitions=settings.partitions)
        voter_ids = [v async for chunk in sweeper._chunks() for v in chunk]
        chunk = await sweeper.read_chunk(voter_ids)

        # An event lands between the sweep's read and its write.
        moved = voter_ids[0]
        redis_client.hincrby(keys.voter(moved), "seq", 1)
        redis_client.hset(keys.voter(moved), "model_version", "event")

        report = SweepReport(model_version=models.version)
        await sweeper._write_slices(sweeper._rescore(chunk, models, report), report)
        await store.close()
        return report, moved

    report, moved = asyncio.run(scenario())

    assert (report.changed, report.skipped) == (299, 1)
    assert redis_client.hget(keys.voter(moved), "model_version") == "event"
    others = [v for v in redis_client.zrange(keys.voters, 0, -1) if v != moved]
    assert {redis_client.hget(keys.voter(v), "model_version") for v in others} == {
        str(models.version)
    }

    # Rankings and precinct aggregates follow the voter hashes exactly.
    for name in SCORES:
        ranked = dict(redis_client.zrange(keys.scores(name), 0, -1, withscores=True))
        stored = {v: float(redis_client.hget(keys.voter(v), name)) for v in ranked}
        assert len(ranked) == 300 and ranked == stored
    raw = redis.Redis.from_url(settings.redis_url)  # the helpers read bytes
    voters = redis_client.zrange(keys.voters, 0, -1)
    recomputed = precinct_aggregates_from_voters(raw, keys, voters)
    assert stored_aggregates(raw, keys, list(recomputed)) == recomputed
    raw.close()


def test_the_store_packs_its_commands_with_hiredis(settings: Settings):
    async def scenario() -> type:
        store = await RedisStore.open(settings)
        await store.client.set(f"{settings.redis_namespace}packed", "yes")
        connection_class = store.client.connection_pool.connection_class
        await store.close()
        return connection_class

    assert asyncio.run(scenario()) is HiredisPackingConnection
