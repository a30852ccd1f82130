"""The re-score sweep: when the population models change, every voter's scores follow.

Event processing only re-scores voters with new evidence. The sweep walks the whole
voter file and re-scores each voter with the current models and the evidence already
in Redis, writing only the voters whose scores changed. It runs in chunks, each under
the worker's processing lock, so it never races an event for the same voter and never
holds the agent up for longer than one chunk. With several workers, each sweeps only
the voters whose partition it owns (Kafka's own key partitioner decides).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

import orjson
from kafka.partitioner.default import murmur2
from models.population import SCORES, PopulationModels
from models.scoring import score_voter

from models.features import voter_features
from streams.logs import get_logger, kv
from streams.redisio import RedisStore, ScoreWrite, read_voter_states

log = get_logger(__name__)


def partition_of(voter_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this voter's events."""
    return (murmur2(voter_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class SweepReport:
    model_version: int = 0
    seen: int = 0
    rescored: int = 0
    changed: int = 0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.rescored / self.elapsed_s if self.elapsed_s else 0.0


class Sweeper:
    """Re-scores every voter (this worker owns) with the given models."""

    def __init__(
        self,
        store: RedisStore,
        *,
        partitions: int,
        owned: Callable[[], set[int] | None] = lambda: None,
        lock: AbstractAsyncContextManager | None = None,
        chunk: int = 1_000,
        max_rate: float | None = None,
    ):
        self.store = store
        self.partitions = partitions
        self.owned = owned
        self.lock = lock
        self.chunk = chunk
        self.max_rate = max_rate

    async def sweep(
        self, models: PopulationModels, progress: Callable[[SweepReport], None] | None = None
    ) -> SweepReport:
        report = SweepReport(model_version=models.version)
        started = time.perf_counter()
        async for voter_ids in self._chunks():
            async with self.lock or nullcontext():
                await self._rescore(voter_ids, models, report)
            report.elapsed_s = time.perf_counter() - started
            await self._publish_progress(report)
            if progress is not None:
                progress(report)
            await self._pace(report)
        log.info(
            "Sweep finished %s",
            kv(
                version=models.version,
                voters=report.rescored,
                changed=report.changed,
                elapsed_s=report.elapsed_s,
                rate=round(report.rate),
            ),
        )
        return report

    async def _chunks(self) -> AsyncIterator[list[str]]:
        keys = self.store.keys
        batch: list[str] = []
        async for key in self.store.client.scan_iter(match=keys.voter_pattern(), count=self.chunk):
            batch.append(keys.voter_from_attrs_key(key))
            if len(batch) >= self.chunk:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _rescore(
        self, voter_ids: list[str], models: PopulationModels, report: SweepReport
    ) -> None:
        owned = self.owned()
        if owned is not None:
            voter_ids = [v for v in voter_ids if partition_of(v, self.partitions) in owned]
        report.seen += len(voter_ids)
        if not voter_ids:
            return

        attrs = await self._attributes(voter_ids)
        states = await read_voter_states(self.store, voter_ids)
        writes = []
        for voter_id, state in zip(voter_ids, states):
            if attrs[voter_id] is None:
                continue
            prior = models.predict_one(voter_features(attrs[voter_id]))
            scores = score_voter(prior, state.totals, state.counts)
            report.rescored += 1
            if all(state.current[n] == scores[n].value for n in SCORES):
                continue
            writes.append(
                ScoreWrite(
                    voter_id=voter_id,
                    precinct=str(attrs[voter_id].get("precinct") or "unknown"),
                    scores=scores,
                    previous=state.current,
                    cause=f"model:v{models.version}",
                    model_version=models.version,
                    event_ts_ms=int(time.time() * 1000),
                    record_history=False,
                )
            )
        report.changed += len(writes)
        await self.store.write_scores(writes)

    async def _attributes(self, voter_ids: list[str]) -> dict[str, dict | None]:
        pipe = self.store.pipeline()
        for voter_id in voter_ids:
            pipe.get(self.store.keys.attrs(voter_id))
        rows = await pipe.execute()
        return {v: (orjson.loads(r) if r else None) for v, r in zip(voter_ids, rows)}

    async def _publish_progress(self, report: SweepReport) -> None:
        await self.store.client.hset(
            self.store.keys.sweep,
            mapping={
                "model_version": report.model_version,
                "rescored": report.rescored,
                "changed": report.changed,
                "elapsed_s": round(report.elapsed_s, 3),
                "updated_at": int(time.time() * 1000),
            },
        )

    async def _pace(self, report: SweepReport) -> None:
        # Without a rate limit the sweep still yields to the event loop between
        # chunks, so the agent gets the lock back at once.
        if self.max_rate is None:
            await asyncio.sleep(0)
            return
        ahead = report.rescored / self.max_rate - report.elapsed_s
        await asyncio.sleep(max(0.0, ahead))
