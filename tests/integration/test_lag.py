"""``votescore lag`` agrees with Kafka's own consumer-group tool on the same broker."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from streams import health, lag
from streams.config import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


@pytest.fixture
def settings() -> Settings:
    unique = uuid.uuid4().hex[:10]
    return Settings(topic_prefix=f"t{unique}-", app_id=f"t{unique}-lag")


@pytest.fixture
def admin(settings: Settings) -> Iterator[KafkaAdminClient]:
    client = lag.connect(settings)
    yield client
    topics = [t for t in client.list_topics() if t.startswith(settings.topic_prefix)]
    client.delete_groups([settings.app_id])
    if topics:
        client.delete_topics(topics)
    client.close()


def produce(settings: Settings, topic: str, counts: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for partition, n in counts.items():
        for i in range(n):
            producer.send(topic, value=b"{}", key=f"V{i}".encode(), partition=partition)
    producer.flush()
    producer.close()


def kafka_tool_describe(settings: Settings, group: str) -> dict[tuple[str, int], tuple]:
    """(topic, partition) -> (current offset, log end offset, lag) as the tool prints them."""
    out = subprocess.run(
        [
            str(ROOT / "scripts/kafka.sh"),
            "tool",
            TOOL,
            "--bootstrap-server",
            settings.kafka_bootstrap,
            "--describe",
            "--group",
            group,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == group:
            rows[(cells[1], int(cells[2]))] = (cells[3], cells[4], cells[5])
    return rows


def ours(snapshot: lag.LagSnapshot) -> dict[tuple[str, int], tuple]:
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    return {
        (row.topic, row.partition): (dash(row.committed), str(row.end), dash(row.lag))
        for row in snapshot.rows
    }


def test_lag_agrees_with_kafka_consumer_group_tool(settings, admin):
    topic = settings.topic("canvass")
    admin.create_topics(
        {topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True
    )
    produce(settings, topic, {0: 7, 1: 4, 2: 2})

    # A live member owns all three partitions but has committed only two of them, so
    # the third must show no committed offset and no lag, as Kafka's tool shows it.
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    try:
        while not consumer.assignment():
            consumer.poll(200, max_records=1)
        consumer.commit(
            {
                TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1),
                TopicPartition(topic, 1): OffsetAndMetadata(4, "", -1),
            }
        )

        snapshot = lag.read_lag(admin, [settings.app_id])
        expected = kafka_tool_describe(settings, settings.app_id)
    finally:
        consumer.close(autocommit=False)

    assert ours(snapshot) == expected
    assert ours(snapshot) == {
        (topic, 0): ("3", "7", "4"),
        (topic, 1): ("4", "4", "0"),
        (topic, 2): ("-", "2", "-"),
    }


def test_lag_of_an_idle_group_agrees_and_its_rate_follows_new_events(settings, admin):
    topic = settings.topic("donations")
    admin.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1}}, wait_for_metadata=True
    )
    produce(settings, topic, {0: 5, 1: 5})
    admin.alter_group_offsets(
        settings.app_id,
        {
            TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1),
            TopicPartition(topic, 1): OffsetAndMetadata(5, "", -1),
        },
    )

    first = lag.read_lag(admin, [settings.app_id])
    assert ours(first) == kafka_tool_describe(settings, settings.app_id)

    produce(settings, topic, {1: 6})
    second = lag.with_rates(lag.read_lag(admin, [settings.app_id]), first)
    rates = {row.partition: row.rate for row in second.rows}
    assert rates[0] == 0
    assert rates[1] > 0  # the group fell behind on partition 1 only
    assert ours(second) == kafka_tool_describe(settings, settings.app_id)


def test_ops_server_reports_lag_and_a_group_that_stopped_consuming(settings, admin):
    topic = settings.topic("canvass")
    admin.create_topics(
        {topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True
    )
    produce(settings, topic, {0: 6})
    # The group read two records and then went silent with four still waiting.
    admin.alter_group_offsets(
        settings.app_id, {TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)}
    )
    ops_settings = replace(settings, web_port=free_port())
    policy = health.HealthPolicy(stall_after_s=1.0, ready_max_lag=2)

    async def scenario() -> tuple[int, dict, str]:
        server = await health.start_ops_server(ops_settings, policy=policy, interval_s=0.2)
        server.health.note("redis", True)
        url = f"http://127.0.0.1:{ops_settings.web_port}"
        try:
            async with aiohttp.ClientSession() as session:
                status, body = await poll_until_stalled(session, url)
                async with session.get(url + "/metrics") as scraped:
                    return status, body, await scraped.text()
        finally:
            await server.stop()

    status, body, exposition = asyncio.run(scenario())
    assert status == 503
    assert body["stalled"] == [f"{settings.app_id}/{topic}/0"]
    assert body["total_lag"] == 4 and not body["ready"]
    lag_line = f'votescore_consumer_lag{{group="{settings.app_id}",partition="0",topic="{topic}"}}'
    assert f"{lag_line} 4.0" in exposition


async def poll_until_stalled(session: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    deadline = time.monotonic() + 30
    while True:
        async with session.get(url + "/healthz") as response:
            body = await response.json()
            if body["stalled"] or time.monotonic() > deadline:
                return response.status, body
        await asyncio.sleep(0.1)
