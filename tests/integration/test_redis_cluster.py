"""votescore against a real three-node Redis Cluster (``scripts/redis.sh cluster-start``).

REDIS_URL points at one node; votescore finds the cluster and spreads voters over its
slots. Everything written for one voter shares one hash slot, so the exactly-once
evidence script runs on one node; rankings, precincts and the feed live elsewhere.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from redis.cluster import RedisCluster

from models.features import voter_features
from models.population import SCORES
from models.scoring import score_voter
from models.voters import read_voters
from streams import topics
from streams.commands import _load_and_score
from streams.config import Settings
from streams.kafka_admin import delete_topics
from streams.modelsync import read_latest_snapshot
from streams.redisio import Keys
from streams.schemas import new_event
from tests.conftest import ROOT, isolated_settings, wait_for

pytestmark = pytest.mark.integration
CLUSTER_URL = "redis://127.0.0.1:7101/0"


@pytest.fixture
def cluster_settings(tmp_path: Path) -> Iterator[Settings]:
    # Starting an already running cluster is a no-op; `make test` starts it first.
    subprocess.run([ROOT / "scripts" / "redis.sh", "cluster-start"], check=True, timeout=60)
    settings = isolated_settings(
        tmp_path,
        redis_url=CLUSTER_URL,
        snapshot_every_labels=10,
        snapshot_interval_s=1.0,
        sweep_interval_s=1.0,
    )
    yield settings
    client = RedisCluster.from_url(CLUSTER_URL)
    for key in list(client.scan_iter(match=f"{settings.redis_namespace}*", count=1000)):
        client.delete(key)
    client.close()
    delete_topics(settings)


@pytest.fixture
def cluster(cluster_settings: Settings) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(CLUSTER_URL, decode_responses=True)
    yield client
    client.close()


def voter_ids(cluster: RedisCluster, keys: Keys) -> list[str]:
    return sorted(cluster.zrange(keys.scores("support"), 0, -1))


def stored_and_expected(cluster: RedisCluster, keys: Keys, voters: list[str], models) -> tuple:
    """Every voter's stored values, and those one-at-a-time scoring gives with ``models``."""
    pipe = cluster.pipeline()
    for voter_id in voters:
        pipe.get(keys.attrs(voter_id))
        pipe.hgetall(keys.voter(voter_id))
    replies = pipe.execute()
    stored, expected = [], []
    for attrs, voter in zip(replies[::2], replies[1::2]):
        totals = {
            s: (int(voter.get(f"{s}_a", 0)) / 1000, int(voter.get(f"{s}_b", 0)) / 1000)
            for s in SCORES
        }
        scores = score_voter(models.predict_one(voter_features(orjson.loads(attrs))), totals, {})
        stored.append([int(voter[s]) for s in SCORES])
        expected.append([scores[s].value for s in SCORES])
    return stored, expected


def test_scores_land_in_a_redis_cluster_exactly_once_and_follow_the_models(
    cluster_settings, cluster, voter_file, start_worker
):
    settings, keys = cluster_settings, Keys(cluster_settings.redis_namespace)
    asyncio.run(_load_and_score(settings, read_voters(voter_file)))
    voters = voter_ids(cluster, keys)
    assert len(voters) == 300
    assert int(cluster.hget(keys.sweep, "rescored")) == 300

    voter_id = voters[0]
    slots = {cluster.keyslot(k) for k in (keys.voter(voter_id), keys.attrs(voter_id))}
    slots |= {cluster.keyslot(keys.evidence(voter_id)), cluster.keyslot(keys.history(voter_id))}
    assert len(slots) == 1
    assert len({cluster.keyslot(keys.voter(v)) for v in voters}) > 1  # spread over the slots

    start_worker(settings)
    canvass = new_event(
        "canvass",
        voter_id,
        {"contact": "contacted", "support_id": 1, "will_vote": "yes"},
        event_id=f"c-{uuid.uuid4().hex[:12]}",
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for _ in range(3):  # one event, delivered three times
        producer.send(
            settings.topic(topics.TOPIC_FOR_TYPE["canvass"]),
            canvass.to_bytes(),
            key=voter_id.encode(),
        )
    producer.flush(timeout=30)
    producer.close()

    # Wait on the evidence, not on `last_event`: the sweep that follows the first model
    # snapshot may re-score this voter and name the models as the last cause.
    wait_for(lambda: cluster.hexists(keys.evidence(voter_id), canvass.event_id), timeout=60)
    assert cluster.hlen(keys.evidence(voter_id)) == 1
    voter = cluster.hgetall(keys.voter(voter_id))
    assert voter["support_n"] == "1" and voter["turnout_n"] == "1"
    assert cluster.zscore(keys.scores("support"), voter_id) == int(voter["support"])
    feed = [e for _id, e in cluster.xrange(keys.changes) if e["cause"] == canvass.event_id]
    assert sorted(e["score"] for e in feed) == sorted({e["score"] for e in feed})

    # The learner turns the canvass into new models; the sweep brings every voter,
    # not only those with evidence, to what those models say.
    latest = wait_for(lambda: asyncio.run(read_latest_snapshot(settings)), timeout=60)
    models = latest[0]
    assert models.version > 0

    def swept() -> bool:
        stored, expected = stored_and_expected(cluster, keys, voters, models)
        return stored == expected

    wait_for(swept, timeout=60, interval=0.5, what="the sweep to re-score every voter")
    assert cluster.hget(keys.sweep, "model_version") == str(models.version)
