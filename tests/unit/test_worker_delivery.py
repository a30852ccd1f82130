"""A batch's offsets wait for its follow-ups: the worker acks only what Kafka has."""

from __future__ import annotations

import asyncio

from kafka.errors import KafkaTimeoutError

from streams import app
from streams.app import ScoringWorker
from streams.config import Settings


class FlakyOutbox:
    """Fails the first ``failures`` deliveries, as a broker that is away would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[list] = []

    async def enqueue(self, messages: list) -> asyncio.Future:
        delivery = asyncio.get_running_loop().create_future()
        if self.failures:
            self.failures -= 1
            delivery.set_exception(KafkaTimeoutError("broker away"))
        else:
            self.delivered.append(list(messages))
            delivery.set_result(None)
        return delivery

    async def send_many(self, messages: list) -> None:
        await (await self.enqueue(messages))


def test_follow_ups_are_sent_again_until_delivered_and_only_then_acked(monkeypatch):
    monkeypatch.setattr(app.Backoff, "wait", lambda self: asyncio.sleep(0))
    worker = ScoringWorker(Settings())
    worker.outbox = FlakyOutbox(failures=2)
    follow_ups = [("labels", None, b"[]", [])]
    acked_after: list[int] = []  # deliveries Kafka had when the batch was acked

    async def scenario() -> None:
        first = await worker.outbox.enqueue(follow_ups)
        settling = asyncio.ensure_future(
            worker._settle(
                follow_ups, first, lambda: acked_after.append(len(worker.outbox.delivered))
            )
        )
        await settling

    asyncio.run(scenario())

    assert worker.outbox.delivered == [follow_ups]  # the third try got through
    assert acked_after == [1]


def test_at_most_a_few_batches_wait_for_kafka_at_once():
    worker = ScoringWorker(Settings())

    async def scenario() -> list[bool]:
        gates = [asyncio.get_running_loop().create_future() for _ in range(app.MAX_UNSETTLED + 1)]
        for gate in gates[:-1]:
            await worker._hold(asyncio.ensure_future(gate))
        # One more than allowed: holding it waits until the oldest batch is settled.
        held = asyncio.ensure_future(worker._hold(asyncio.ensure_future(gates[-1])))
        await asyncio.sleep(0)
        waiting = not held.done()
        gates[0].set_result(None)
        await held
        return [waiting, held.done()]

    assert asyncio.run(scenario()) == [True, True]
