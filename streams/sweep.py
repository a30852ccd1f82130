"""The re-score sweep: when the population models change, every voter's scores follow.

Event processing only re-scores voters with new evidence. The sweep walks the whole
voter file (the ``voters`` index, in voter-id order) and re-scores each voter with the
current models and the evidence already in Redis, writing only the voters whose
scores changed.

It works a chunk of voters at a time, with numpy (:mod:`models.batch`): one Redis call
reads the chunk's attributes and evidence, one matrix product gives every prior, one
vectorised Beta quantile call per bound gives every interval, and one script call
writes a slice of them from arrays. Redis reads the next chunks and writes the last
one on its own core while Python scores this one. Reading and scoring run outside the
worker's processing lock, so events keep flowing; only the write takes the lock, and
the script checks (by each voter's evidence sequence number) that no event re-scored
the voter meanwhile. With several workers, each sweeps only the voters whose
partition it owns (Kafka's own key partitioner decides). Progress goes to the
``sweep`` hash in Redis and to the log.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import orjson
from kafka.partitioner.default import murmur2

from models.batch import BatchScores, batch_priors, batch_scores
from models.population import SCORES, PopulationModels
from streams.logs import get_logger, kv
from streams.redisio import RedisStore, SweptScores

log = get_logger(__name__)
PROGRESS_LOG_S = 10.0
# Voters written per hold of the worker's lock: a batch of events waits for one slice.
WRITE_SLICE = 125
# With no events flowing, chunks and slices this many times bigger: fewer round trips
# and script calls per voter, and no batch waiting on them.
IDLE_SCALE = 4
# Chunks read ahead of the one being scored.
READ_AHEAD = 2
# Chunks of voter ids read from the index at a time.
INDEX_PAGE_CHUNKS = 8
# Progress goes to Redis at most this often: the write waits behind the sweep's own.
PROGRESS_PUBLISH_S = 1.0
# Per score: successes and failures in thousandths, evidence count, stored value.
STATE_FIELDS = ["seq"] + [f"{n}{suffix}" for n in SCORES for suffix in ("_a", "_b", "_n", "")]


def partition_of(voter_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this voter's events."""
    return (murmur2(voter_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class SweepReport:
    model_version: int = 0
    seen: int = 0
    rescored: int = 0
    changed: int = 0
    skipped: int = 0  # re-scored by an event while the sweep computed: already current
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.rescored / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Chunk:
    """What the sweep read for a chunk of voters: attributes and evidence state."""

    voter_ids: list[str]
    attrs: list[dict[str, Any]]
    state: np.ndarray  # one row per voter: STATE_FIELDS as integers, -1 for a missing score


class Sweeper:
    """Re-scores every voter (this worker owns) with the given models."""

    def __init__(
        self,
        store: RedisStore,
        *,
        partitions: int,
        owned: Callable[[], set[int] | None] = lambda: None,
        lock: AbstractAsyncContextManager | None = None,
        chunk: int = 250,
        max_rate: float | None = None,
        events_flowing: Callable[[], bool] = lambda: False,
        share: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.store = store
        self.partitions = partitions
        self.owned = owned
        self.lock = lock
        self.chunk = chunk
        self.max_rate = max_rate
        self.events_flowing = events_flowing
        self.share = min(max(share, 0.01), 1.0)
        self.sleep = sleep
        self._read = store.client.register_script(
            resources.files("streams.lua").joinpath("sweep_read.lua").read_text()
        )

    async def sweep(
        self, models: PopulationModels, progress: Callable[[SweepReport], None] | None = None
    ) -> SweepReport:
        report = SweepReport(model_version=models.version)
        started = time.perf_counter()
        last_log = last_publish = 0.0
        writing: asyncio.Future | None = None
        try:
            async for chunk in self._read_ahead(report):
                working = time.perf_counter()
                writes = self._rescore(chunk, models, report)
                # A chunk is written while the next one is scored, one chunk in flight.
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._write_slices(writes, report))
                worked = time.perf_counter() - working
                report.elapsed_s = time.perf_counter() - started
                if report.elapsed_s - last_publish > PROGRESS_PUBLISH_S:
                    last_publish = report.elapsed_s
                    await self._publish_progress(report)
                if progress is not None:
                    progress(report)
                if report.elapsed_s - last_log > PROGRESS_LOG_S:
                    last_log = report.elapsed_s
                    log.info("Sweep progress %s", _fields(report))
                await self._pace(report, worked)
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
        report.elapsed_s = time.perf_counter() - started
        await self._publish_progress(report)
        log.info("Sweep finished %s", _fields(report))
        return report

    async def _chunks(self) -> AsyncIterator[list[str]]:
        """The voter file in voter-id order, a chunk at a time, from the ``voters`` index.

        In id order because each ranking keeps voters of equal score in id order: the
        sweep's updates then land next to each other in the sorted sets, and Redis
        spends a quarter of the time it spends on updates in random (SCAN) order. The
        index is read many chunks at a time: each read waits behind the sweep's own
        writes in Redis's queue.
        """
        after, waiting, last_page = "-", [], False
        while waiting or not last_page:
            size = self.chunk * self._scale()  # decided once per chunk
            if len(waiting) < size and not last_page:
                page = size * INDEX_PAGE_CHUNKS
                voter_ids = await self.store.client.zrangebylex(
                    self.store.keys.voters, after, "+", start=0, num=page
                )
                last_page = len(voter_ids) < page
                if voter_ids:
                    after = "(" + voter_ids[-1]
                waiting += voter_ids
                continue
            yield waiting[:size]
            waiting = waiting[size:]

    async def _read_ahead(self, report: SweepReport) -> AsyncIterator[Chunk]:
        """Chunks to re-score, read ahead of the one being scored.

        Redis answers the next reads on its own core while this one scores in Python;
        idle, ``READ_AHEAD`` are queued, so it has work even when a write ends early.
        """
        reading: deque[asyncio.Future[Chunk]] = deque()
        async for voter_ids in self._chunks():
            owned = self._owned(voter_ids, report)
            if not owned:
                continue
            reading.append(asyncio.ensure_future(self.read_chunk(owned)))
            await asyncio.sleep(0)  # let it send its command before a chunk is scored
            # While events flow, one read ahead: each queued read delays their batches.
            while len(reading) > (1 if self.events_flowing() else READ_AHEAD):
                yield await reading.popleft()
        while reading:
            yield await reading.popleft()

    def _owned(self, voter_ids: list[str], report: SweepReport) -> list[str]:
        owned = self.owned()
        if owned is not None:
            voter_ids = [v for v in voter_ids if partition_of(v, self.partitions) in owned]
        report.seen += len(voter_ids)
        return voter_ids

    def _rescore(
        self, chunk: Chunk, models: PopulationModels, report: SweepReport
    ) -> SweptScores | None:
        """The new scores of the chunk's voters whose scores changed."""
        if not chunk.voter_ids:
            return None

        scores = score_chunk(models, chunk)
        report.rescored += len(chunk.voter_ids)
        changed = _changed_rows(chunk, scores)
        if not len(changed):
            return None
        return _swept(chunk, scores, changed, models.version)

    async def _write_slices(self, swept: SweptScores | None, report: SweepReport) -> None:
        """Write the voters no event re-scored since the read (they are current already).

        Only this takes the worker's lock, a slice at a time, so that a batch of events
        waits for at most one slice's write, never for a whole chunk. Redis checks each
        voter's evidence sequence number in the same step as the write.
        """
        if swept is None:
            return
        # Idle, the chunk goes in one call: slices would each wait for the loop, which
        # is busy scoring the next chunk, and leave Redis idle in between.
        size = WRITE_SLICE if self.events_flowing() else len(swept)
        for start in range(0, len(swept), size):
            piece = swept.slice(start, start + size)
            async with self.lock or nullcontext():
                written = await self.store.write_swept(piece)
            report.skipped += len(piece) - written
            report.changed += written

    def _scale(self) -> int:
        # Small steps while events flow, so a batch never waits long behind the sweep.
        return 1 if self.events_flowing() else IDLE_SCALE

    async def read_chunk(self, voter_ids: Sequence[str]) -> Chunk:
        """The attributes and evidence state of these voters (those still in the file)."""
        attrs_json, states = await self._read_many(voter_ids)
        known = [i for i, row in enumerate(attrs_json) if row is not None]
        width = len(STATE_FIELDS)
        state = np.empty((0, width), dtype=np.int64)
        if known:
            text = ",".join(states[i] for i in known)
            state = np.fromstring(text, dtype=np.int64, sep=",").reshape(len(known), width)
        return Chunk(
            voter_ids=[voter_ids[i] for i in known],
            attrs=[orjson.loads(attrs_json[i]) for i in known],
            state=state,
        )

    async def _read_many(self, voter_ids: Sequence[str]) -> tuple[list[Any], list[str]]:
        """Per voter, its attributes JSON (None when gone) and its state as "v1,v2,..."."""
        keys = self.store.keys
        if not self.store.clustered:
            names = [name for v in voter_ids for name in (keys.attrs(v), keys.voter(v))]
            flat = await self._read(keys=names, args=STATE_FIELDS)
            return flat[::2], flat[1::2]

        # Redis Cluster: each voter is its own slot, so one command per key; the
        # cluster pipeline still sends each node its commands in one round trip.
        pipe = self.store.pipeline()
        for voter_id in voter_ids:
            pipe.get(keys.attrs(voter_id))
            pipe.hmget(keys.voter(voter_id), STATE_FIELDS)
        replies = await pipe.execute()
        states = [",".join("-1" if v is None else v for v in row) for row in replies[1::2]]
        return replies[::2], states

    async def _publish_progress(self, report: SweepReport) -> None:
        await self.store.client.hset(
            self.store.keys.sweep,
            mapping={
                "model_version": report.model_version,
                "seen": report.seen,
                "rescored": report.rescored,
                "changed": report.changed,
                "elapsed_s": round(report.elapsed_s, 3),
                "rate": round(report.rate),
                "updated_at": int(time.time() * 1000),
            },
        )

    async def _pace(self, report: SweepReport, worked: float) -> None:
        """Pause between chunks: for the rate limit, and to leave events the loop.

        Fresh evidence matters more than model drift, so while events flow the sweep
        takes at most ``share`` of the event loop: after a chunk that took ``worked``
        seconds it rests ``worked * (1 - share) / share``. Idle, it runs flat out.
        """
        pause = 0.0
        if self.max_rate is not None:
            pause = report.rescored / self.max_rate - report.elapsed_s
        if self.share < 1.0 and self.events_flowing():
            pause = max(pause, worked * (1.0 - self.share) / self.share)
        # Even a zero pause yields to the event loop, so the agent runs its batches.
        await self.sleep(max(0.0, pause))


def score_chunk(models: PopulationModels, chunk: Chunk) -> dict[str, BatchScores]:
    """Every score of every voter in the chunk, from the models and the stored evidence."""
    priors = batch_priors(models, chunk.attrs)
    successes, failures = {}, {}
    for i, name in enumerate(SCORES):
        # Evidence is stored in integer thousandths (exact retractions); -1 is "none".
        successes[name] = np.maximum(chunk.state[:, 1 + 4 * i], 0) / 1000
        failures[name] = np.maximum(chunk.state[:, 2 + 4 * i], 0) / 1000
    return batch_scores(priors, successes, failures)


def _changed_rows(chunk: Chunk, scores: dict[str, BatchScores]) -> np.ndarray:
    changed = np.zeros(len(chunk.voter_ids), dtype=bool)
    for i, name in enumerate(SCORES):
        changed |= scores[name].value != chunk.state[:, 4 + 4 * i]
    return np.flatnonzero(changed)


def _swept(
    chunk: Chunk, scores: dict[str, BatchScores], rows: np.ndarray, version: int
) -> SweptScores:
    """The new scores of these rows, with the evidence sequence numbers they were read at."""
    state = chunk.state[rows]
    numbers = []
    for i, name in enumerate(SCORES):
        score = scores[name]
        evidence = np.maximum(state[:, 3 + 4 * i], 0)
        numbers += [score.value[rows], score.low[rows], score.high[rows], evidence]
    return SweptScores(
        voter_ids=[chunk.voter_ids[row] for row in rows.tolist()],
        precincts=[str(chunk.attrs[row].get("precinct") or "unknown") for row in rows.tolist()],
        read_at=state[:, 0].tolist(),
        numbers=np.stack(numbers, axis=1),
        probability=np.stack([scores[name].probability[rows] for name in SCORES], axis=1),
        previous=state[:, 4::4],
        model_version=version,
    )


def _fields(report: SweepReport) -> str:
    return kv(
        version=report.model_version,
        voters=report.rescored,
        changed=report.changed,
        skipped=report.skipped,
        elapsed_s=round(report.elapsed_s, 1),
        rate=round(report.rate),
    )
