"""Settings: one immutable object, read from the environment in exactly one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Everything a votescore process can be told.

    Each field maps to the environment variable named in its metadata; tests build a
    ``Settings`` directly (for example with a unique ``topic_prefix``) instead of
    touching the environment.
    """

    kafka_bootstrap: str = field(default="127.0.0.1:9092", metadata={"env": "KAFKA_BOOTSTRAP"})
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"env": "REDIS_URL"})
    # Prefixes keep several deployments (or test runs) apart on one broker and Redis.
    topic_prefix: str = field(default="", metadata={"env": "VOTESCORE_TOPIC_PREFIX"})
    redis_namespace: str = field(default="", metadata={"env": "VOTESCORE_REDIS_NAMESPACE"})
    app_id: str = field(default="votescore", metadata={"env": "VOTESCORE_APP_ID"})
    partitions: int = field(default=4, metadata={"env": "VOTESCORE_PARTITIONS"})
    data_dir: Path = field(default=Path(".local/worker"), metadata={"env": "VOTESCORE_DATA_DIR"})
    web_host: str = field(default="127.0.0.1", metadata={"env": "VOTESCORE_WEB_HOST"})
    web_port: int = field(default=6066, metadata={"env": "VOTESCORE_WEB_PORT"})
    ingest_port: int = field(default=8080, metadata={"env": "VOTESCORE_INGEST_PORT"})
    dashboard_port: int = field(default=8050, metadata={"env": "VOTESCORE_DASHBOARD_PORT"})
    max_event_bytes: int = field(default=16_384, metadata={"env": "VOTESCORE_MAX_EVENT_BYTES"})
    max_future_skew_s: float = field(default=300.0, metadata={"env": "VOTESCORE_MAX_FUTURE_SKEW_S"})
    change_feed_maxlen: int = field(default=100_000, metadata={"env": "VOTESCORE_FEED_MAXLEN"})
    batch_size: int = field(default=500, metadata={"env": "VOTESCORE_BATCH_SIZE"})
    batch_window_s: float = field(default=0.005, metadata={"env": "VOTESCORE_BATCH_WINDOW_S"})
    # The learner publishes a model snapshot after this many new labels or seconds,
    # whichever comes first; each new version invalidates every cached prior.
    snapshot_every_labels: int = field(default=10_000, metadata={"env": "VOTESCORE_SNAPSHOT_EVERY"})
    snapshot_interval_s: float = field(
        default=10.0, metadata={"env": "VOTESCORE_SNAPSHOT_INTERVAL_S"}
    )
    # The sweep re-scores every voter when the models change: at most this many
    # voters a second (0: as fast as it can between batches), at most this often.
    sweep_rate: float = field(default=0.0, metadata={"env": "VOTESCORE_SWEEP_RATE"})
    sweep_interval_s: float = field(default=30.0, metadata={"env": "VOTESCORE_SWEEP_INTERVAL_S"})
    # While events flow, the sweep takes at most this share of the worker's event loop.
    sweep_share: float = field(default=0.2, metadata={"env": "VOTESCORE_SWEEP_SHARE"})
    log_level: str = field(default="INFO", metadata={"env": "VOTESCORE_LOG_LEVEL"})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``)."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.update(overrides)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for starting another votescore process."""
        return {f.metadata["env"]: str(getattr(self, f.name)) for f in fields(self)}

    def topic(self, name: str) -> str:
        """The full Kafka topic name for one of votescore's logical topics."""
        return f"{self.topic_prefix}{name}"

    def key(self, name: str) -> str:
        """The full Redis key for one of votescore's logical keys."""
        return f"{self.redis_namespace}{name}"


def _convert(type_name: Any, raw: str) -> Any:
    # Annotations are strings under `from __future__ import annotations`.
    kind = str(type_name)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    return raw
