"""Kafka topics: their logical names, which event type each carries, and settings."""

from __future__ import annotations

# Topic a field app publishes to, and the one event type it accepts.
EVENT_TOPICS: dict[str, str] = {
    "canvass": "canvass",
    "donations": "donation",
    "ad-interactions": "ad",
    "retractions": "retraction",
}
TOPIC_FOR_TYPE: dict[str, str] = {kind: topic for topic, kind in EVENT_TOPICS.items()}

DEAD_LETTERS = "dead-letters"
# Evidence that one voter's event carries about the rest of the household,
# re-keyed by the member so that the member's own partition applies it in order.
HOUSEHOLD_EVIDENCE = "household-evidence"
# Compacted: the newest population-model snapshot, for every scorer to load.
MODEL_SNAPSHOTS = "model-snapshots"
# Labeled examples, on one partition so that one learner sees them all in order.
LABELS = "labels"
