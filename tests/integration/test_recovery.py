"""Nothing lost, nothing counted twice: retries, worker crashes and a lost Redis.

Against the real broker and Redis, each test with its own topics and namespace. The
yardstick is an uninterrupted run of the same records: ``votescore replay`` into a
namespace of its own, scoring with one fixed model snapshot (see ``bench/chaos.py``).
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from bench.chaos import (
    PrivateKafka,
    PrivateRedis,
    Stream,
    capture,
    chaos_run,
    evidence_differences,
    lost_events,
    make_stream,
    max_score_difference,
    newest_models,
    publish_stream,
    rescore,
    wait_caught_up,
)
from models.population import labels_from_event
from models.voters import read_voters
from streams.config import Settings
from streams.redisio import Keys
from streams.replay import replay
from tests.conftest import cleanup, votescore, wait_for
from tests.integration.redis_state import precinct_aggregates_from_voters, stored_aggregates

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def quick_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust reads this itself: a killed worker's partitions pass to its successor
    # after 10 s instead of the default 60 s.
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "10")


def voter_ids(voter_file: Path) -> list[str]:
    return read_voters(voter_file).column("voter_id").to_pylist()


def retried(stream: Stream, rng: random.Random) -> Stream:
    """The same events, each sent 1 to 10 times, the copies shuffled among the rest."""
    records = []
    for record in stream.records:
        records += [record] * rng.randint(1, 10)
    rng.shuffle(records)
    return replace(stream, records=records, duplicates=len(records) - stream.events)


def feed_by_voter_and_score(client: redis.Redis, keys: Keys) -> dict[tuple, list[dict]]:
    chains: dict[tuple, list[dict]] = {}
    for _id, entry in client.xrange(keys.changes):
        entry = {k.decode(): v.decode() for k, v in entry.items()}
        chains.setdefault((entry["voter"], entry["score"]), []).append(entry)
    return chains


def test_an_event_sent_up_to_ten_times_counts_once_in_evidence_aggregates_and_feed(
    settings: Settings, voter_file: Path, start_worker
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace)
    voters = read_voters(voter_file)
    asyncio.run(replay(settings, voters=voters, show_progress=False))  # loads and scores
    once = make_stream(voters, 150, seed=11, duplicate_rate=0, garbage_rate=0)
    start_worker()

    publish_stream(settings, retried(once, random.Random(3)), rate=2_000)
    publish_stream(settings, once, rate=2_000)  # late retries, after the first copies applied
    wait_caught_up(settings, timeout=120)

    ids = voter_ids(voter_file)
    live = capture(client, keys, ids)
    assert lost_events(live, once) == 0
    for voter_id, sent in once.event_ids.items():
        applied = {e for e in live.evidence[voter_id]["ids"] if "~" not in e}
        assert applied == sent

    # The feed: one entry per real change, each starting where the previous one ended.
    for (voter_id, name), chain in feed_by_voter_and_score(client, keys).items():
        causes = [entry["cause"] for entry in chain]
        assert len(causes) == len(set(causes)), f"a change of {voter_id} {name} fed twice"
        for before, after in zip(chain, chain[1:]):
            assert after["old"] == before["new"]
        assert int(chain[-1]["new"]) == live.scores[voter_id][name]

    # Aggregates: exactly what the voters' scores add up to.
    recomputed = precinct_aggregates_from_voters(client, keys, ids)
    assert stored_aggregates(client, keys, list(recomputed)) == recomputed

    # Evidence equals one pass over the events sent once, scored with the same models.
    models = newest_models(settings)
    rescore(settings, models)
    reference_settings = replace(settings, redis_namespace=settings.redis_namespace + "ref:")
    publish_only_once = replace(settings, topic_prefix=settings.topic_prefix + "once-")
    publish_stream(publish_only_once, once, rate=5_000)
    reference_run = replace(publish_only_once, redis_namespace=reference_settings.redis_namespace)
    asyncio.run(replay(reference_run, voters=voters, models=models, show_progress=False))
    reference = capture(client, Keys(reference_run.redis_namespace), ids)
    live = capture(client, keys, ids)
    cleanup(reference_run)
    client.close()

    assert evidence_differences(live, reference) == 0
    assert max_score_difference(live, reference) == 0
    assert live.precincts == reference.precincts


def expected_labels(stream: Stream, voters) -> int:
    """Labels the learner must learn: one per labeled score of each distinct good event."""
    seen: set[str] = set()
    total = 0
    for _topic, _key, value in stream.records:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict) or event.get("event_id") in seen:
            continue
        if str(event.get("source")) != "chaos" or str(event.get("event_id")).startswith("bad-"):
            continue
        seen.add(event["event_id"])
        total += len(labels_from_event(event))
    return total


def test_a_worker_killed_at_random_moments_applies_every_event_exactly_once(
    settings: Settings, voter_file: Path, start_worker, tmp_path: Path
) -> None:
    rebuilt_by_cli: list[str] = []

    def rebuild(run_settings: Settings) -> None:
        # Redis lost: the documented recovery, `votescore replay --voters FILE`.
        done = votescore(run_settings, "replay", "--voters", str(voter_file))
        rebuilt_by_cli.append(done.stdout)

    report = chaos_run(
        settings,
        voter_file,
        count=2_500,
        kills=2,
        rate=250.0,
        seed=23,
        start_worker=start_worker,
        rebuild=rebuild,
        catch_up_timeout=240,
    )

    assert report.kills == 2
    assert report.lost == 0
    assert report.evidence_mismatches == 0
    assert report.aggregates_equal
    assert report.max_score_diff == 0
    assert report.dead_lettered == report.garbage_sent > 0
    assert report.replay_after_loss_equal
    assert re.search(r"replayed \d+ records", rebuilt_by_cli[0])


@pytest.fixture
def private_services(tmp_path: Path) -> Iterator[tuple[PrivateKafka, PrivateRedis]]:
    """A broker and a Redis of the test's own, since the test restarts them."""
    kafka = PrivateKafka(tmp_path / "kafka").start()
    redis_server = PrivateRedis(tmp_path / "redis").start()
    yield kafka, redis_server
    redis_server.stop()
    kafka.stop()


def test_the_worker_rides_out_a_broker_restart_and_a_redis_restart(
    settings: Settings, voter_file: Path, start_worker, private_services
) -> None:
    kafka, redis_server = private_services
    private = replace(settings, kafka_bootstrap=kafka.bootstrap, redis_url=redis_server.url)

    report = chaos_run(
        private,
        voter_file,
        count=1_500,
        kills=0,
        rate=150.0,
        seed=41,
        start_worker=lambda: start_worker(private),
        kafka=kafka,
        redis_server=redis_server,
        catch_up_timeout=240,
    )

    assert report.broker_restarts == 1 and report.redis_restarts == 1
    assert report.lost == 0
    assert report.evidence_mismatches == 0
    assert report.aggregates_equal
    assert report.max_score_diff == 0
    assert report.dead_lettered == report.garbage_sent


def test_the_learner_resumes_from_its_snapshot_after_a_kill(
    settings: Settings, voter_file: Path, start_worker
) -> None:
    voters = read_voters(voter_file)
    asyncio.run(replay(settings, voters=voters, show_progress=False))
    stream = make_stream(voters, 1_500, seed=31, duplicate_rate=0.1, garbage_rate=0)
    # Snapshots every 2 s, events for about 10 s: the kill lands mid-stream.
    settings = replace(settings, snapshot_interval_s=2.0)
    first = start_worker(settings)
    publisher = threading.Thread(
        target=publish_stream, args=(settings, stream), kwargs={"rate": 150}
    )
    publisher.start()

    first_snapshot = re.compile(r"Published model snapshot version=\d+ offset=([1-9]\d*)")
    wait_for(lambda: first_snapshot.search(first.log()), timeout=90, what="a first snapshot")
    first.kill()
    assert publisher.is_alive(), "the stream ended before the kill"
    second = start_worker(settings)
    took_over = re.compile(r"Learner took over version=(\d+) offset=(\d+)")
    resumed = wait_for(lambda: took_over.search(second.log()), timeout=90, what="a takeover")
    publisher.join()
    wait_caught_up(settings, timeout=180)

    assert int(resumed[2]) > 0, "the learner started from scratch"
    expected = expected_labels(stream, voters)
    wait_for(
        lambda: newest_models(settings).labels_seen >= expected,
        timeout=60,
        interval=1.0,
        what="a snapshot covering every label",
    )
    second.stop()
    assert newest_models(settings).labels_seen == expected
