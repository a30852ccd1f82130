"""The worker's own Kafka producer: idempotent, ``acks=all``; each send can be awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from streams.config import Settings

# (topic, key, value, headers)
Message = tuple[str, bytes | None, bytes, list]


class KafkaOutbox:
    """Sends a batch of records and returns only once Kafka has every one of them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the producer is made here, not in __init__.
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send_many(self, messages: Sequence[Message]) -> None:
        await (await self.enqueue(messages))

    async def enqueue(self, messages: Sequence[Message]) -> asyncio.Future:
        """Hand the records to the producer, in order; the future completes once Kafka
        has every one of them (or fails with the first delivery error)."""
        assert self.producer is not None, "start() the outbox first"
        deliveries = [
            await self.producer.send(topic, value, key=key, headers=headers or None)
            for topic, key, value, headers in messages
        ]
        return asyncio.gather(*deliveries)
