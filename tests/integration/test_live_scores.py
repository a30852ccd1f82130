"""End to end on the real broker and Redis: events in, scores out, exactly once."""

from __future__ import annotations

import uuid

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from streams import topics
from streams.config import Settings
from streams.redisio import Keys
from streams.schemas import new_event
from tests.conftest import votescore, wait_for

pytestmark = pytest.mark.integration


def publish(settings: Settings, topic: str, key: str | None, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(settings.topic(topic), value, key=key.encode() if key else None).get(timeout=30)
    producer.close()


def publish_event(settings: Settings, event) -> None:
    publish(settings, topics.TOPIC_FOR_TYPE[event.type], event.voter_id, event.to_bytes())


def canvass(voter_id: str, support_id: int = 1, **extra) -> object:
    payload = {"contact": "contacted", "support_id": support_id, **extra}
    return new_event("canvass", voter_id, payload, event_id=f"e-{uuid.uuid4().hex[:12]}")


def first_voter(redis_client, keys: Keys) -> str:
    return min(redis_client.zrange(keys.scores("support"), 0, -1))


def scored_by(redis_client, keys: Keys, voter_id: str, event_id: str) -> dict | None:
    voter = redis_client.hgetall(keys.voter(voter_id))
    return voter if voter.get("last_event") == event_id else None


def test_a_canvass_moves_the_voters_score_in_redis(
    settings, redis_client, loaded_voters, start_worker
):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)
    before = redis_client.hgetall(keys.voter(voter_id))
    start_worker()

    event = canvass(voter_id, support_id=1)
    publish_event(settings, event)
    after = wait_for(lambda: scored_by(redis_client, keys, voter_id, event.event_id), timeout=60)

    assert int(after["support"]) > int(before["support"])
    assert int(after["support_n"]) == 1
    assert int(after["support_low"]) <= int(after["support"]) <= int(after["support_high"])
    assert redis_client.zscore(keys.scores("support"), voter_id) == int(after["support"])
    feed = redis_client.xrange(keys.changes)
    assert any(e[1]["voter"] == voter_id and e[1]["cause"] == event.event_id for e in feed)


def test_the_same_event_ten_times_counts_once(settings, redis_client, loaded_voters, start_worker):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)
    start_worker()

    event = canvass(voter_id, support_id=1, will_vote="yes")
    for _ in range(10):
        publish_event(settings, event)
    marker = canvass(voter_id, support_id=2)
    publish_event(settings, marker)
    after = wait_for(lambda: scored_by(redis_client, keys, voter_id, marker.event_id), timeout=60)

    assert int(after["support_n"]) == 2
    assert int(after["turnout_n"]) == 1
    causes = [e[1]["cause"] for e in redis_client.xrange(keys.changes) if e[1]["voter"] == voter_id]
    assert causes.count(event.event_id) == len(
        set(
            e[1]["score"]
            for e in redis_client.xrange(keys.changes)
            if e[1]["cause"] == event.event_id
        )
    )


def test_a_retraction_restores_the_score_exactly(
    settings, redis_client, loaded_voters, start_worker
):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)
    before = redis_client.hgetall(keys.voter(voter_id))
    start_worker()

    event = canvass(voter_id, support_id=5)
    publish_event(settings, event)
    wait_for(lambda: scored_by(redis_client, keys, voter_id, event.event_id), timeout=60)
    retraction = new_event(
        "retraction", voter_id, {"retracts": event.event_id, "reason": "wrong voter"}
    )
    publish_event(settings, retraction)
    after = wait_for(
        lambda: scored_by(redis_client, keys, voter_id, retraction.event_id), timeout=60
    )

    for name in ("support", "turnout", "donor", "engagement"):
        assert after[name] == before[name]
        assert int(after[f"{name}_n"]) == 0
        assert int(after.get(f"{name}_a", 0)) == 0 and int(after.get(f"{name}_b", 0)) == 0


def dead_letters(settings: Settings, expected: int) -> list:
    consumer = KafkaConsumer(
        settings.topic(topics.DEAD_LETTERS),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    seen: list = []
    wait_for(lambda: seen.extend(consumer) or len(seen) >= expected, timeout=60, interval=0)
    consumer.close()
    return seen


def test_bad_events_go_to_dead_letters_and_the_worker_keeps_going(
    settings, redis_client, loaded_voters, start_worker
):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)
    start_worker()

    good = canvass(voter_id)
    bad_support = orjson.loads(canvass(voter_id).to_bytes())
    bad_support["payload"]["support_id"] = 9
    publish(settings, "canvass", voter_id, b"{not json")
    publish(settings, "canvass", voter_id, orjson.dumps(bad_support))
    publish(settings, "canvass", "V9999999", canvass("V9999999").to_bytes())
    publish(settings, "donations", voter_id, b"\xff\xfe\x00")
    publish_event(settings, good)

    wait_for(lambda: scored_by(redis_client, keys, voter_id, good.event_id), timeout=60)
    letters = dead_letters(settings, expected=4)
    reasons = sorted(dict(m.headers)["reason"].decode() for m in letters)
    assert reasons == ["invalid_field", "malformed_json", "not_utf8", "unknown_voter"]
    originals = {m.value for m in letters}
    assert b"{not json" in originals and b"\xff\xfe\x00" in originals
    field = [
        dict(m.headers)["field"] for m in letters if dict(m.headers)["reason"] == b"invalid_field"
    ]
    assert field == [b"payload.support_id"]


def test_score_command_prints_live_scores(settings, redis_client, loaded_voters):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)

    shown = votescore(settings, "score", voter_id)
    as_json = orjson.loads(votescore(settings, "score", voter_id, "--json").stdout)

    assert f"voter {voter_id}" in shown.stdout
    assert f"support {as_json['support']:>4}".replace(" ", "") in shown.stdout.replace(" ", "")
    missing = votescore(settings, "score", "V-nobody", check=False)
    assert missing.returncode == 1 and "no scores" in missing.stderr


def http_get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_the_worker_serves_metrics_and_health(settings, redis_client, loaded_voters, start_worker):
    keys = Keys(settings.redis_namespace)
    voter_id = first_voter(redis_client, keys)
    start_worker()

    event = canvass(voter_id)
    publish_event(settings, event)
    publish(settings, "canvass", voter_id, b"{broken")
    wait_for(lambda: scored_by(redis_client, keys, voter_id, event.event_id), timeout=60)

    canvass_topic = settings.topic("canvass")
    processed = f'votescore_events_processed_total{{topic="{canvass_topic}"}} 2.0'
    page = wait_for(
        lambda: (lambda r: r[1] if processed in r[1] else None)(
            http_get(settings.web_port, "/metrics")
        ),
        timeout=30,
        what="the processed counter on /metrics",
    )
    assert f'reason="malformed_json",topic="{canvass_topic}"' in page
    assert "votescore_event_to_redis_seconds_count" in page
    status, body = wait_for(
        lambda: (lambda r: r if r[0] == 200 else None)(http_get(settings.web_port, "/healthz")),
        timeout=30,
        what="a live verdict",
    )
    assert orjson.loads(body)["live"] is True


def test_a_retraction_that_overtakes_its_event_leaves_the_same_state(settings, redis_client):
    # Retractions travel on their own topic, so one may be applied before its event.
    import asyncio
    from dataclasses import replace

    from streams.redisio import RedisStore

    donation = (b'{"type":"donation","source":"app","evidence":{"donor":[0.5,0]}}', "")
    retraction = (b'{"type":"retraction","source":"app","retracts":"d-1"}', "d-1")
    items = {"d-1": donation, "r-1": retraction}

    async def apply_in(order: list[str], namespace: str) -> None:
        store = await RedisStore.open(replace(settings, redis_namespace=namespace))
        for event_id in order:
            record, retracts = items[event_id]
            await store.apply_evidence([("V1", event_id, record, retracts)])
        await store.close()

    in_order, overtaken = settings.redis_namespace + "a:", settings.redis_namespace + "b:"
    asyncio.run(apply_in(["d-1", "r-1", "d-1"], in_order))
    asyncio.run(apply_in(["r-1", "d-1", "d-1"], overtaken))

    def state(namespace: str) -> tuple[dict, dict]:
        keys = Keys(namespace)
        # A total that went up and down again reads as 0, one never touched is absent.
        voter = {k: v for k, v in redis_client.hgetall(keys.voter("V1")).items() if v != "0"}
        evidence = redis_client.hgetall(keys.evidence("V1"))
        return voter, {event_id: orjson.loads(doc) for event_id, doc in evidence.items()}

    assert state(in_order) == state(overtaken)
    voter, evidence = state(overtaken)
    assert voter == {"seq": "2"}
    assert evidence["d-1"]["retracted_by"] == "r-1" and evidence["d-1"]["type"] == "donation"
