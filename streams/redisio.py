"""Redis: the keys votescore writes (the dashboard contract), and the writes themselves.

Everything written for one voter carries the voter id as a Redis Cluster hash tag
(``voter:{V}``, ``evidence:{V}``, ...), so the Lua script that applies an event touches
one slot and runs atomically on a single server or a cluster alike.

One event costs a bounded number of round trips, whatever the batch size: one
pipelined read of attributes that are not cached, one pipeline applying every event's
evidence, one pipeline writing the refreshed scores.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import hiredis
import numpy as np
import orjson
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from models.population import SCORES
from models.scoring import Score
from streams.config import Settings

HISTORY_LENGTH = 50
STATE_WIDTH = 2 + 4 * len(SCORES)


class Keys:
    """Key names, with the deployment's namespace prefix."""

    def __init__(self, namespace: str = ""):
        self.ns = namespace
        self.precincts = f"{namespace}precincts"
        self.voters = f"{namespace}voters"
        self.changes = f"{namespace}changes"
        self.model = f"{namespace}model"
        self.sweep = f"{namespace}sweep"
        self.exports = f"{namespace}exports"

    def voter(self, voter_id: str) -> str:
        return f"{self.ns}voter:{{{voter_id}}}"

    def attrs(self, voter_id: str) -> str:
        return f"{self.ns}attrs:{{{voter_id}}}"

    def evidence(self, voter_id: str) -> str:
        return f"{self.ns}evidence:{{{voter_id}}}"

    def history(self, voter_id: str) -> str:
        return f"{self.ns}history:{{{voter_id}}}"

    def scores(self, score: str) -> str:
        return f"{self.ns}scores:{{{score}}}"

    def precinct(self, precinct: str) -> str:
        return f"{self.ns}precinct:{{{precinct}}}"

    def precinct_members(self, precinct: str) -> str:
        return f"{self.ns}precinct-members:{{{precinct}}}"


class VoterStates:
    """Voters' evidence right after each item of a batch was applied (or found applied).

    One row per item, as the evidence script returns it: ``applied`` (1 or 0), ``seq``,
    then per score in :data:`SCORES` its successes and failures (integer thousandths of
    a pseudo-count), its evidence count and its stored value (-1 for none yet). Kept
    as one integer matrix: a batch reads it column by column.
    """

    def __init__(self, rows: np.ndarray):
        self.rows = rows.reshape(-1, STATE_WIDTH)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def applied(self) -> list[bool]:
        return (self.rows[:, 0] == 1).tolist()

    def successes(self, score: int) -> np.ndarray:
        return self.rows[:, 2 + 4 * score] / 1000

    def failures(self, score: int) -> np.ndarray:
        return self.rows[:, 3 + 4 * score] / 1000

    def counts(self, score: int) -> np.ndarray:
        return self.rows[:, 4 + 4 * score]

    def stored(self) -> list[dict[str, int | None]]:
        """Each item's stored values by score, None where a score was never written."""
        values = self.rows[:, 5::4].tolist()
        return [{n: (v if v >= 0 else None) for n, v in zip(SCORES, row)} for row in values]


@dataclass(slots=True)
class ScoreWrite:
    """Refreshed scores for one voter, and why they changed."""

    voter_id: str
    precinct: str
    scores: dict[str, Score]
    previous: dict[str, int | None]
    cause: str
    model_version: int
    event_ts_ms: int
    record_history: bool = True
    changed: list[str] = field(default_factory=list)


@dataclass
class SweptScores:
    """The sweep's new scores for a slice of voters, as arrays: one row per voter."""

    voter_ids: list[str]
    precincts: list[str]
    read_at: list[int]  # each voter's evidence sequence number when the sweep read it
    numbers: np.ndarray  # per score: value, low, high, evidence count (integers)
    probability: np.ndarray  # per score
    previous: np.ndarray  # per score: the value the sweep read, -1 for none
    model_version: int

    def __len__(self) -> int:
        return len(self.voter_ids)

    @property
    def cause(self) -> str:
        return f"model:v{self.model_version}"

    def slice(self, start: int, stop: int) -> SweptScores:
        return SweptScores(
            self.voter_ids[start:stop],
            self.precincts[start:stop],
            self.read_at[start:stop],
            self.numbers[start:stop],
            self.probability[start:stop],
            self.previous[start:stop],
            self.model_version,
        )

    def score_writes(self, now_ms: int) -> list[ScoreWrite]:
        """The same scores as one :class:`ScoreWrite` per voter (the Redis Cluster path)."""
        numbers, probability, previous = (
            self.numbers.tolist(),
            self.probability.tolist(),
            self.previous.tolist(),
        )
        writes = []
        for i, voter_id in enumerate(self.voter_ids):
            scores = {
                name: Score(probability[i][j], *numbers[i][4 * j : 4 * j + 4])
                for j, name in enumerate(SCORES)
            }
            writes.append(
                ScoreWrite(
                    voter_id=voter_id,
                    precinct=self.precincts[i],
                    scores=scores,
                    previous={n: (v if v >= 0 else None) for n, v in zip(SCORES, previous[i])},
                    cause=self.cause,
                    model_version=self.model_version,
                    event_ts_ms=now_ms,
                    record_history=False,
                )
            )
        return writes


def _script(*names: str) -> str:
    """Lua source, libraries first: Redis has no includes, so scripts are joined."""
    folder = resources.files("streams.lua")
    return "\n".join(folder.joinpath(name).read_text() for name in names)


class HiredisPackingConnection(aioredis.Connection):
    """A connection that packs commands with hiredis (C) rather than redis-py's Python.

    redis-py's asyncio connection packs every argument in Python, about a microsecond
    each: for the sweep's scripts, with a key or two per voter, that was a fifth of its
    Python time. hiredis packs str, bytes, int and float the same way.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "CONFIG GET" and the like
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as error:
            raise redis.exceptions.DataError(str(error)) from error


async def connect(url: str) -> aioredis.Redis | RedisCluster:
    """Connect to a single Redis or, when the server says it is in a cluster, to the cluster."""
    # A rediss:// or unix:// URL picks its own connection class over this one.
    client = aioredis.Redis.from_url(
        url, decode_responses=True, connection_class=HiredisPackingConnection
    )
    info = await client.info("cluster")
    if info.get("cluster_enabled"):
        await client.aclose()
        return RedisCluster.from_url(url, decode_responses=True)
    return client


class RedisStore:
    """Every read and write votescore makes to Redis."""

    def __init__(self, client: aioredis.Redis | RedisCluster, keys: Keys, *, feed_maxlen: int):
        self.client = client
        self.keys = keys
        self.feed_maxlen = feed_maxlen
        self.clustered = isinstance(client, RedisCluster)
        self._apply = client.register_script(_script("evidence.lua", "apply_batch.lua"))
        self._write = client.register_script(_script("aggregates.lua", "write_batch.lua"))
        self._fold = client.register_script(_script("aggregates.lua", "fold_precinct.lua"))
        self._write_swept = client.register_script(_script("aggregates.lua", "sweep_write.lua"))

    @classmethod
    async def open(cls, settings: Settings) -> RedisStore:
        client = await connect(settings.redis_url)
        store = cls(client, Keys(settings.redis_namespace), feed_maxlen=settings.change_feed_maxlen)
        if store.clustered:  # cluster pipelines send EVALSHA only: load on every primary first
            for script in (store._apply, store._write, store._fold):
                await client.script_load(script.script)
        return store

    async def close(self) -> None:
        await self.client.aclose()

    def pipeline(self, *, atomic: bool = False) -> Any:
        # A cluster cannot run MULTI across slots; every write below is safe to
        # repeat, so a non-atomic pipeline only widens the window, never the result.
        return self.client.pipeline(transaction=atomic and not self.clustered)

    async def voter_attributes(self, voter_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The voter-file rows of these voters; None for a voter not in the file."""
        pipe = self.pipeline()
        for voter_id in voter_ids:
            pipe.get(self.keys.attrs(voter_id))
        rows = await pipe.execute()
        return {v: (orjson.loads(row) if row else None) for v, row in zip(voter_ids, rows)}

    async def apply_evidence(self, items: Sequence[tuple[str, str, bytes, str]]) -> VoterStates:
        """Apply (voter, event id, record JSON, retracted id) items in order, exactly once each."""
        if not items:
            return VoterStates(np.zeros((0, STATE_WIDTH), dtype=np.int64))
        if not self.clustered:
            return VoterStates(np.array(await self._apply_batch(self.client, items)))

        # In a cluster every voter is its own slot: one script call per event.
        pipe = self.pipeline()
        for voter_id, event_id, record, retracts in items:
            batch = orjson.dumps([[event_id, record.decode(), retracts]])
            keys = [self.keys.evidence(voter_id), self.keys.voter(voter_id)]
            _queue_script(pipe, self._apply, keys, [batch, *SCORES])
        replies = await pipe.execute()
        return VoterStates(np.array([value for reply in replies for value in reply]))

    async def _apply_batch(self, client: Any, items: Sequence[tuple[str, str, bytes, str]]) -> Any:
        keys: list[str] = []
        for voter_id, *_rest in items:
            keys += [self.keys.evidence(voter_id), self.keys.voter(voter_id)]
        batch = [[event_id, record.decode(), retracts] for _v, event_id, record, retracts in items]
        return await self._apply(keys=keys, args=[orjson.dumps(batch), *SCORES], client=client)

    async def write_scores(self, writes: Sequence[ScoreWrite]) -> None:
        """Store refreshed scores, their rankings, aggregates, feed and history."""
        if not writes:
            return
        now_ms = int(time.time() * 1000)
        if self.clustered:
            await self._write_per_command(writes, now_ms)
            return
        await self._write_batch(writes, now_ms)

    async def _write_batch(self, writes: Sequence[ScoreWrite], now_ms: int) -> None:
        # One script call for the whole batch: a round trip and a parse per batch
        # instead of a dozen per event, and the batch lands atomically.
        keys = [self.keys.scores(name) for name in SCORES] + [self.keys.changes]
        for write in writes:
            keys += [
                self.keys.voter(write.voter_id),
                self.keys.history(write.voter_id),
                self.keys.precinct(write.precinct),
                self.keys.precinct_members(write.precinct),
            ]
        batch = {
            "scores": list(SCORES),
            "maxlen": self.feed_maxlen,
            "history_length": HISTORY_LENGTH,
            "writes": [_write_entry(write, now_ms) for write in writes],
        }
        await self._write(keys=keys, args=[orjson.dumps(batch)])

    async def write_swept(self, swept: SweptScores) -> int:
        """Store the sweep's re-scored voters; returns how many were written.

        A voter whose evidence moved on since the sweep read it is left alone: an event
        re-scored it already. The sweep changes no evidence, so it adds nothing to the
        change feed or the voter's history.
        """
        if not len(swept):
            return 0
        now_ms = int(time.time() * 1000)
        if self.clustered:
            writes = await self._still_current(swept.score_writes(now_ms), swept.read_at)
            await self._write_per_command(writes, now_ms)
            return len(writes)

        # Arrays, not one entry per voter: the slice is hundreds of voters, and the
        # script fills one reused field list from them.
        precincts: dict[str, int] = {}
        at = [precincts.setdefault(p, len(precincts) + 1) for p in swept.precincts]
        keys = [self.keys.scores(name) for name in SCORES]
        for precinct in precincts:
            keys += [self.keys.precinct(precinct), self.keys.precinct_members(precinct)]
        keys += [self.keys.voter(voter_id) for voter_id in swept.voter_ids]
        head = {
            "scores": list(SCORES),
            "precincts": list(precincts),
            "cause": swept.cause,
            "version": swept.model_version,
            "now": now_ms,
        }
        body = {
            "voters": swept.voter_ids,
            "precinct": at,
            "read_at": swept.read_at,
            "numbers": swept.numbers.ravel(),
            "previous": swept.previous.ravel(),
        }
        args = [orjson.dumps(head), orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)]
        return int(await self._write_swept(keys=keys, args=args))

    async def _still_current(
        self, writes: Sequence[ScoreWrite], read_at: Sequence[int]
    ) -> list[ScoreWrite]:
        # Redis Cluster: check first, then write (the caller holds the worker's lock,
        # so no batch of events runs in between).
        pipe = self.pipeline()
        for write in writes:
            pipe.hget(self.keys.voter(write.voter_id), "seq")
        current = await pipe.execute()
        return [w for w, seq, seen in zip(writes, current, read_at) if int(seq or -1) == seen]

    async def _write_per_command(self, writes: Sequence[ScoreWrite], now_ms: int) -> None:
        # Redis Cluster: the voter's keys, each ranking, each precinct and the feed
        # live in different slots, so each is written by its own command. Every one
        # of them but the feed and history is set from state, so a retried batch
        # converges on the same result.
        pipe = self.pipeline()
        for write in writes:
            entry = _write_entry(write, now_ms)
            pipe.hset(self.keys.voter(write.voter_id), mapping=_pairs(entry["fields"]))
            for name in SCORES:
                pipe.zadd(self.keys.scores(name), {write.voter_id: write.scores[name].value})
            _queue_script(
                pipe,
                self._fold,
                [self.keys.precinct(write.precinct), self.keys.precinct_members(write.precinct)],
                [write.voter_id, entry["values"], *SCORES],
            )
            self._queue_feed(pipe, entry)
            if entry["history"] is not None:
                pipe.lpush(self.keys.history(write.voter_id), entry["history"])
                pipe.ltrim(self.keys.history(write.voter_id), 0, HISTORY_LENGTH - 1)
        await pipe.execute()

    def _queue_feed(self, pipe: Any, entry: dict[str, Any]) -> None:
        for name, old, new in entry["feed"]:
            change = {
                "voter": entry["voter"],
                "score": name,
                "old": old,
                "new": new,
                "cause": entry["cause"],
                "ts": entry["ts"],
                "event_ts": entry["event_ts"],
            }
            pipe.xadd(self.keys.changes, change, maxlen=self.feed_maxlen, approximate=True)

    async def load_voters(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store voter-file rows (already stripped of anything hidden); returns the count."""
        pipe = self.pipeline()
        count = 0
        precincts: set[str] = set()
        indexed: dict[str, int] = {}
        for row in rows:
            voter_id = str(row["voter_id"])
            pipe.set(self.keys.attrs(voter_id), orjson.dumps(row))
            precincts.add(str(row.get("precinct") or "unknown"))
            indexed[voter_id] = 0
            count += 1
            if count % 5_000 == 0:
                await self._flush_load(pipe, indexed)
        if precincts:
            pipe.sadd(self.keys.precincts, *precincts)
        await self._flush_load(pipe, indexed)
        return count

    async def _flush_load(self, pipe: Any, indexed: dict[str, int]) -> None:
        # The index the sweep walks in voter-id order (every member scores 0).
        if indexed:
            pipe.zadd(self.keys.voters, indexed)
            indexed.clear()
        await pipe.execute()

    async def voter(self, voter_id: str) -> dict[str, str]:
        return await self.client.hgetall(self.keys.voter(voter_id))


def _write_entry(write: ScoreWrite, now_ms: int) -> dict[str, Any]:
    fields: list[Any] = [
        "updated_at",
        now_ms,
        "model_version",
        write.model_version,
        "last_event",
        write.cause,
        "precinct",
        write.precinct,
    ]
    for name, score in write.scores.items():
        fields += [name, score.value, f"{name}_low", score.low, f"{name}_high", score.high]
        fields += [f"{name}_n", score.evidence]
    history = None
    if write.record_history:
        moved = {n: s.value for n, s in write.scores.items()}
        history = orjson.dumps({"ts": now_ms, "event": write.cause, "scores": moved}).decode()
    feed = [
        [
            name,
            "" if write.previous.get(name) is None else write.previous[name],
            write.scores[name].value,
        ]
        for name in write.changed
    ]
    return {
        "voter": write.voter_id,
        "fields": fields,
        "values": ",".join(str(write.scores[name].value) for name in SCORES),
        "feed": feed,
        "cause": write.cause,
        "ts": now_ms,
        "event_ts": write.event_ts_ms,
        "history": history,
    }


def _queue_script(pipe: Any, script: Any, keys: list[str], args: list[Any]) -> None:
    # redis-py refuses Script objects in a cluster pipeline; a plain EVALSHA is routed
    # by its first key like any command (the script was loaded at open).
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return dict(zip(flat[::2], flat[1::2]))
