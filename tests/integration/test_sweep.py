"""The re-score sweep on real Redis: it follows new models and gives way to events."""

from __future__ import annotations

import asyncio

import pytest

from models.population import PopulationModels
from streams.config import Settings
from streams.redisio import RedisStore
from streams.sweep import Sweeper, SweepReport

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
