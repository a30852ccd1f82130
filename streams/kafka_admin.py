"""Creating votescore's topics with the partition counts and policies they need."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams import topics
from streams.config import Settings
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


def ensure_topics(settings: Settings) -> list[str]:
    """Create any missing topic; returns the names created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="votescore-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another worker won the race: the topics exist, which is all we need
            log.info("Created topics %s", kv(topics=",".join(t.name for t in wanted)))
        return [t.name for t in wanted]
    finally:
        admin.close()


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
