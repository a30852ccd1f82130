"""Creating votescore's topics with the partition counts and policies they need."""

from __future__ import annotations

import asyncio

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams import topics
from streams.config import Settings
from streams.errors import VotescoreError
from streams.logs import get_logger, kv

log = get_logger(__name__)


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Every topic votescore uses, as it should be created."""
    # Events, household evidence and labels are kept forever: `votescore replay`
    # rebuilds Redis from them, and the learner replays labels after its snapshot.
    forever = {"retention.ms": "-1"}
    keyed = [*topics.EVENT_TOPICS, topics.HOUSEHOLD_EVIDENCE]
    specs = [
        NewTopic(settings.topic(name), settings.partitions, 1, topic_configs=forever)
        for name in keyed
    ]
    specs.append(NewTopic(settings.topic(topics.DEAD_LETTERS), settings.partitions, 1))
    # One partition each: one learner sees every label in order, and the newest
    # snapshot is simply the last record.
    specs.append(NewTopic(settings.topic(topics.LABELS), 1, 1, topic_configs=forever))
    specs.append(
        NewTopic(
            settings.topic(topics.MODEL_SNAPSHOTS),
            1,
            1,
            topic_configs={"cleanup.policy": "compact", "segment.ms": "600000"},
        )
    )
    return specs


class TopicMismatch(VotescoreError):
    """A topic exists with another partition count than votescore needs."""


def ensure_topics(settings: Settings) -> list[str]:
    """Create any missing topic and check the partitions of the rest; returns those created.

    A voter's events must all land on the partition that owns the voter, and the sweep
    finds a voter's owner from the partition count, so a topic created with another
    count (for example by a broker that creates topics on first use) is refused.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="votescore-admin"
    )
    try:
        specs = topic_specs(settings)
        existing = set(admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another worker won the race: the counts are checked below
            log.info("Created topics %s", kv(topics=",".join(t.name for t in wanted)))
        _check_partitions(admin, [spec for spec in specs if spec.name in existing])
        return [t.name for t in wanted]
    finally:
        admin.close()


async def prepare_topics(settings: Settings) -> None:
    """:func:`ensure_topics` off the event loop, for commands that can go on without Kafka.

    An unreachable broker is only a warning (loading a voter file needs Redis alone);
    a topic with the wrong partition count is still an error.
    """
    try:
        await asyncio.to_thread(ensure_topics, settings)
    except (KafkaError, OSError) as exc:
        log.warning("Kafka not reachable; topics not checked %s", kv(error=type(exc).__name__))


def _check_partitions(admin: KafkaAdminClient, specs: list[NewTopic]) -> None:
    if not specs:
        return
    found = {
        description["name"]: len(description["partitions"])
        for description in admin.describe_topics([spec.name for spec in specs])
    }
    wrong = [
        f"{spec.name} has {found[spec.name]}, needs {spec.num_partitions}"
        for spec in specs
        if found.get(spec.name) != spec.num_partitions
    ]
    if wrong:
        raise TopicMismatch(
            "topics with the wrong partition count ("
            + "; ".join(wrong)
            + "): set VOTESCORE_PARTITIONS to match, or delete and recreate them"
        )


def delete_topics(settings: Settings) -> None:
    """Remove every topic of this deployment (tests clean up with it)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="votescore-admin"
    )
    try:
        names = [spec.name for spec in topic_specs(settings)]
        existing = [n for n in admin.list_topics() if n in names or n.startswith(settings.app_id)]
        if existing:
            admin.delete_topics(existing)
    finally:
        admin.close()
