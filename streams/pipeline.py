"""The scoring pipeline: one batch of Kafka records in, refreshed scores in Redis out.

Independent of Faust so that it can be tested, benchmarked and replayed on its own;
``streams.app`` feeds it batches from the agents. Steps, per batch:

1. decode and validate every record; a bad one becomes a dead letter with its reason;
2. look up the voters (attributes cached; an unknown voter is a dead letter);
3. apply each event's evidence in Redis, exactly once (a Lua script per event);
4. score the voters again: population prior, updated by the voter's own evidence;
5. write the scores, rankings, precinct aggregates, change feed and history;
6. send what others need: labels for the learner, household evidence, dead letters.

Every step is safe to repeat, so Kafka's at-least-once delivery gives exactly-once
effects in Redis.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

from models.batch import batch_scores
from models.evidence import evidence_from_event, household_share
from models.features import voter_features
from models.population import SCORES, PopulationModels, labels_from_event
from models.scoring import Score
from streams import topics
from streams.config import Settings
from streams.errors import InvalidEvent
from streams.redisio import RedisStore, ScoreWrite, VoterStates
from streams.schemas import decode_document


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as the pipeline sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass(slots=True)
class Evidence:
    """One piece of evidence about one voter, ready to apply."""

    voter_id: str
    event_id: str
    event: dict[str, Any]
    record: Record
    retracts: str = ""
    origin_voter: str | None = None  # set for evidence shared from a household member


@dataclass
class BatchReport:
    """What one batch did, for metrics and logs."""

    processed: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, reason)
    duplicates: int = 0
    applied: int = 0
    latencies_s: list[float] = field(default_factory=list)


class Outbox(Protocol):
    """Where the pipeline sends records for other topics; awaiting means Kafka has them."""

    async def send_many(
        self, messages: Sequence[tuple[str, bytes | None, bytes, list]]
    ) -> None: ...


class ModelSource(Protocol):
    """The population models every scorer uses right now."""

    @property
    def models(self) -> PopulationModels: ...


class Lru(OrderedDict):
    """A small least-recently-used cache."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.capacity:
            self.popitem(last=False)


class ScoringPipeline:
    """Turns batches of evidence records into refreshed scores."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        model_source: ModelSource,
        outbox: Outbox,
        *,
        cache_size: int = 200_000,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.store = store
        self.model_source = model_source
        self.outbox = outbox
        self.clock = clock
        self.voters: Lru = Lru(cache_size)  # voter id -> (attrs, features)
        self.priors: Lru = Lru(cache_size)  # voter id -> (model version, prior)
        self.expected_type = {settings.topic(t): kind for t, kind in topics.EVENT_TOPICS.items()}
        self.household_topic = settings.topic(topics.HOUSEHOLD_EVIDENCE)

    async def process(self, records: Sequence[Record]) -> BatchReport:
        """Process a batch; returns once Redis has its scores and Kafka its follow-ups."""
        report, follow_ups = await self.score(records)
        await self.outbox.send_many(follow_ups)
        return report

    async def score(self, records: Sequence[Record]) -> tuple[BatchReport, list]:
        """Steps 1 to 5: the batch's evidence and scores in Redis.

        Returns the report and the records step 6 must send; a worker sends them
        while it scores the next batch, and lets Kafka commit the batch's offsets
        only once they are delivered.
        """
        report = BatchReport()
        dead: list[tuple[Record, InvalidEvent]] = []

        evidence = self._decode_all(records, dead, report)
        evidence = await self._known_voters(evidence, dead)
        states = await self.store.apply_evidence([self._apply_item(e) for e in evidence])

        writes = self._rescore(evidence, states, report)
        await self.store.write_scores(writes)

        self._count(report, records, dead)
        return report, self._follow_ups(evidence, states) + self.dead_letters(dead)

    # 1. decode

    def _decode_all(
        self, records: Sequence[Record], dead: list, report: BatchReport
    ) -> list[Evidence]:
        now = self.clock()
        out: list[Evidence] = []
        for record in records:
            try:
                out.append(self._decode(record, now))
            except InvalidEvent as exc:
                dead.append((record, exc))
        return out

    def _decode(self, record: Record, now: float) -> Evidence:
        if record.topic == self.household_topic:
            return _household_evidence(record)

        event, document = decode_document(
            record.value,
            expected_type=self.expected_type.get(record.topic),
            now=now,
            max_bytes=self.settings.max_event_bytes,
            max_future_skew_s=self.settings.max_future_skew_s,
        )
        if record.key is not None and record.key.decode("utf-8", "replace") != event.voter_id:
            raise InvalidEvent("key_mismatch", "record key differs from voter_id", field="voter_id")
        retracts = document["payload"]["retracts"] if event.type == "retraction" else ""
        return Evidence(event.voter_id, event.event_id, document, record, retracts=retracts)

    # 2. voters

    async def _known_voters(self, evidence: list[Evidence], dead: list) -> list[Evidence]:
        missing = sorted({e.voter_id for e in evidence if e.voter_id not in self.voters})
        if missing:
            for voter_id, attrs in (await self.store.voter_attributes(missing)).items():
                if attrs is not None:
                    self.voters.put(voter_id, (attrs, voter_features(attrs)))

        known = []
        for item in evidence:
            if item.voter_id in self.voters:
                known.append(item)
            else:
                dead.append(
                    (item.record, InvalidEvent("unknown_voter", f"no voter {item.voter_id}"))
                )
        return known

    # 3. evidence

    def _apply_item(self, item: Evidence) -> tuple[str, str, bytes, str]:
        event = item.event
        record: dict[str, Any] = {
            "type": event["type"],
            "ts": event.get("ts"),
            "source": event.get("source"),
        }
        if item.origin_voter is not None:
            record.update(
                type="household", origin=event["event_id"], origin_voter=item.origin_voter
            )
        if not item.retracts:
            record["evidence"] = event.get("evidence") or evidence_from_event(event)
        else:
            record["retracts"] = item.retracts
        return (item.voter_id, item.event_id, orjson.dumps(record), item.retracts)

    # 4. scores

    def _rescore(
        self, evidence: list[Evidence], states: VoterStates, report: BatchReport
    ) -> list[ScoreWrite]:
        models = self.model_source.models
        batch = self._score_batch(evidence, states, models)
        latest: dict[str, dict[str, int | None]] = {}
        writes = []
        for item, applied, stored, scores in zip(evidence, states.applied, states.stored(), batch):
            previous = latest.get(item.voter_id, stored)
            changed = [n for n in SCORES if previous.get(n) != scores[n].value]
            latest[item.voter_id] = {n: s.value for n, s in scores.items()}
            if applied:
                report.applied += 1
            else:
                report.duplicates += 1
            # A duplicate still writes when Redis lags behind its evidence (a crash
            # between the two steps); otherwise it changes nothing.
            if applied or changed:
                write = self._score_write(item, scores, previous, changed, models.version)
                if not applied:
                    # A replayed event had its say in the feed already; what moved its
                    # voter since is the models, so the change is theirs.
                    write.cause, write.record_history = f"model:v{models.version}", False
                writes.append(write)
                report.latencies_s.append(self.clock() - item.record.timestamp_ms / 1000)
        return writes

    def _score_batch(
        self, evidence: list[Evidence], states: VoterStates, models: PopulationModels
    ) -> list[dict[str, Score]]:
        """Every event's scores at once: one numpy call per score and quantity."""
        if not evidence:
            return []
        priors = [self._prior(item.voter_id, models) for item in evidence]
        columns = batch_scores(
            {name: np.array([p[name] for p in priors]) for name in SCORES},
            {name: states.successes(i) for i, name in enumerate(SCORES)},
            {name: states.failures(i) for i, name in enumerate(SCORES)},
        )
        # Plain Python numbers once per column: numpy elements one at a time are slow.
        per_score = {
            name: list(
                zip(
                    col.probability.tolist(),
                    col.value.tolist(),
                    col.low.tolist(),
                    col.high.tolist(),
                    states.counts(i).tolist(),
                )
            )
            for i, (name, col) in enumerate(columns.items())
        }
        return [{name: Score(*per_score[name][k]) for name in SCORES} for k in range(len(evidence))]

    def _prior(self, voter_id: str, models: PopulationModels) -> dict[str, float]:
        cached = self.priors.get(voter_id)
        if cached is not None and cached[0] == models.version:
            return cached[1]
        prior = models.predict_one(self.voters[voter_id][1])
        self.priors.put(voter_id, (models.version, prior))
        return prior

    def _score_write(
        self,
        item: Evidence,
        scores: dict[str, Score],
        previous: dict,
        changed: list[str],
        version: int,
    ) -> ScoreWrite:
        attrs = self.voters[item.voter_id][0]
        return ScoreWrite(
            voter_id=item.voter_id,
            precinct=str(attrs.get("precinct") or "unknown"),
            scores=scores,
            previous=previous,
            cause=item.event_id,
            model_version=version,
            event_ts_ms=item.record.timestamp_ms,
            changed=changed,
        )

    # 6. follow-ups

    def _follow_ups(self, evidence: list[Evidence], states: VoterStates) -> list:
        # Sent for duplicates too: the first attempt may have died before sending.
        # The learner drops labels it has seen; household evidence has stable ids.
        examples: list[dict[str, Any]] = []
        out: list = []
        for item in evidence:
            if item.origin_voter is not None:
                continue
            examples.extend(self._labels(item))
            out.extend(self._household(item))
        if examples:
            # One record for the batch's labels: the learner reads them in order.
            out.append((self.settings.topic(topics.LABELS), None, orjson.dumps(examples), []))
        return out

    def _labels(self, item: Evidence) -> list[dict[str, Any]]:
        if item.retracts:
            return []
        labels = labels_from_event(item.event)
        if not labels:
            return []
        features = self.voters[item.voter_id][1]
        return [{"event_id": item.event_id, "features": features, "labels": labels}]

    def _household(self, item: Evidence) -> list:
        attrs = self.voters[item.voter_id][0]
        members = [m for m in attrs.get("household_members") or [] if m != item.voter_id]
        if not members:
            return []
        shared_event = dict(item.event)
        if not item.retracts:
            shared_event["evidence"] = household_share(evidence_from_event(item.event))
            if not any(shared_event["evidence"].values()):
                return []
        out = []
        for member in members:
            message = {
                "voter_id": member,
                "event_id": f"{item.event_id}~{member}",
                "origin_voter": item.voter_id,
                "retracts": f"{item.retracts}~{member}" if item.retracts else "",
                "event": shared_event,
            }
            out.append((self.household_topic, member.encode(), orjson.dumps(message), []))
        return out

    def dead_letters(self, dead: list[tuple[Record, InvalidEvent]]) -> list:
        topic = self.settings.topic(topics.DEAD_LETTERS)
        out = []
        for record, error in dead:
            headers = [
                ("reason", error.reason.encode()),
                ("detail", error.detail.encode("utf-8", "replace")[:500]),
                ("field", (error.field or "").encode()),
                ("topic", record.topic.encode()),
                ("partition", str(record.partition).encode()),
                ("offset", str(record.offset).encode()),
            ]
            out.append((topic, record.key, record.value, headers))
        return out

    def _count(self, report: BatchReport, records: Sequence[Record], dead: list) -> None:
        for record in records:
            report.processed[record.topic] = report.processed.get(record.topic, 0) + 1
        for record, error in dead:
            key = (record.topic, error.reason)
            report.dead_letters[key] = report.dead_letters.get(key, 0) + 1


def _household_evidence(record: Record) -> Evidence:
    # Written by another worker of ours, so a bad one is a bug, but it still must
    # not stop the worker.
    try:
        shared = orjson.loads(record.value)
        return Evidence(
            shared["voter_id"],
            shared["event_id"],
            shared["event"],
            record,
            retracts=shared.get("retracts", ""),
            origin_voter=shared["origin_voter"],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidEvent("malformed_household_evidence", repr(exc)) from exc
