"""Prometheus metrics every votescore process serves, and the calls that update them.

The metric objects live in one module so that every worker, the ingest service and the
lag monitor agree on names and labels. Workers call the small functions below rather
than touching the metric objects, so that a renamed label changes one place::

    metrics.record_processed("canvass", 12)
    metrics.observe_latency(0.004)
    metrics.record_dead_letter("canvass", "invalid_field")

``render()`` returns the text exposition for a ``/metrics`` endpoint.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "RollingQuality", "render"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

CONSUMER_LAG = Gauge(
    "votescore_consumer_lag",
    "Records between a consumer group's committed offset and the partition's end.",
    ["group", "topic", "partition"],
)
CONSUMER_LAG_RATE = Gauge(
    "votescore_consumer_lag_rate",
    "Change of consumer lag in records per second; negative while catching up.",
    ["group", "topic", "partition"],
)
EVENTS_PROCESSED = Counter(
    "votescore_events_processed", "Events applied to scores, per topic.", ["topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "votescore_events_dead_lettered",
    "Events sent to the dead-letter topic, per topic and reason code.",
    ["topic", "reason"],
)
EVENT_TO_REDIS = Histogram(
    "votescore_event_to_redis_seconds",
    "Time from an event's arrival in Kafka to its scores landing in Redis.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SWEEP_DONE = Gauge("votescore_sweep_voters_done", "Voters rescored in the current sweep.")
SWEEP_TOTAL = Gauge("votescore_sweep_voters_total", "Voters the current sweep will rescore.")
MODEL = Info("votescore_model", "The population model scoring now.")
MODEL_LOG_LOSS = Gauge(
    "votescore_model_log_loss", "Log loss on the latest labels, per score.", ["score"]
)
MODEL_AUC = Gauge("votescore_model_auc", "ROC AUC on the latest labels, per score.", ["score"])
SERVICE_ERRORS = Counter(
    "votescore_service_errors", "Failed calls to Redis or Kafka, per service.", ["service"]
)
INGEST_REQUESTS = Counter(
    "votescore_ingest_requests",
    "HTTP ingest requests, per source and HTTP status.",
    ["source", "status"],
)
INGEST_EVENTS = Counter(
    "votescore_ingest_events", "Events the ingest service produced to Kafka.", ["source", "topic"]
)


def record_processed(topic: str, n: int = 1) -> None:
    """Count ``n`` events of ``topic`` applied to scores."""
    EVENTS_PROCESSED.labels(topic=topic).inc(n)


def record_dead_letter(topic: str, reason: str, n: int = 1) -> None:
    """Count ``n`` events of ``topic`` dead-lettered with the stable ``reason`` code."""
    EVENTS_DEAD_LETTERED.labels(topic=topic, reason=reason).inc(n)


def observe_latency(seconds: float) -> None:
    """Record one event's time from Kafka to Redis."""
    EVENT_TO_REDIS.observe(seconds)


def set_sweep_progress(done: int, total: int) -> None:
    """Report how far the current rescoring sweep has got."""
    SWEEP_DONE.set(done)
    SWEEP_TOTAL.set(total)


def set_model_version(version: str | int) -> None:
    """Report which population model version is scoring now."""
    MODEL.info({"version": str(version)})


def set_model_quality(score: str, log_loss: float, auc: float) -> None:
    """Report one score's rolling log loss and AUC on the latest labels (NaN if unknown)."""
    MODEL_LOG_LOSS.labels(score=score).set(log_loss)
    MODEL_AUC.labels(score=score).set(auc)


def record_error(service: str) -> None:
    """Count one failed call to ``service`` (``redis`` or ``kafka``)."""
    SERVICE_ERRORS.labels(service=service).inc()


def set_lag(group: str, topic: str, partition: int, lag: int, rate: float | None) -> None:
    """Report one partition's consumer lag and its rate of change."""
    labels = {"group": group, "topic": topic, "partition": str(partition)}
    CONSUMER_LAG.labels(**labels).set(lag)
    CONSUMER_LAG_RATE.labels(**labels).set(math.nan if rate is None else rate)


def render() -> bytes:
    """The text exposition of every metric, for a ``/metrics`` endpoint."""
    return generate_latest(REGISTRY)


class RollingQuality:
    """Log loss and ROC AUC of predicted probabilities over the latest labels.

    Keeps the newest ``window`` (label, probability) pairs, so the figures follow the
    model as it learns rather than averaging over its whole life.

    >>> quality = RollingQuality(window=4)
    >>> for label, p in [(1, 0.9), (0, 0.2), (1, 0.6), (0, 0.4)]:
    ...     quality.observe(label, p)
    >>> quality.auc()
    1.0
    >>> round(quality.log_loss(), 3)
    0.338
    """

    def __init__(self, window: int = 1000, eps: float = 1e-15):
        self.pairs: deque[tuple[int, float]] = deque(maxlen=window)
        self.eps = eps

    def observe(self, label: int | bool, probability: float) -> None:
        """Add one label and the probability the model gave it before learning it."""
        self.pairs.append((int(bool(label)), float(probability)))

    def log_loss(self) -> float:
        """Mean negative log likelihood over the window; NaN when empty."""
        if not self.pairs:
            return math.nan
        total = 0.0
        for label, p in self.pairs:
            p = min(max(p, self.eps), 1 - self.eps)
            total -= math.log(p) if label else math.log(1 - p)
        return total / len(self.pairs)

    def auc(self) -> float:
        """ROC AUC over the window (ties count half); NaN without both classes."""
        return _rank_auc(self.pairs)


def _rank_auc(pairs: Iterable[tuple[int, float]]) -> float:
    # Mann-Whitney U from average ranks: exact, and O(n log n) per call.
    ordered = sorted(pairs, key=lambda pair: pair[1])
    positives = sum(label for label, _ in ordered)
    negatives = len(ordered) - positives
    if positives == 0 or negatives == 0:
        return math.nan

    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][1] == ordered[i][1]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(label for label, _ in ordered[i : j + 1])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
