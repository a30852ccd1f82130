"""The consumer-lag panel: how far the worker's consumer group trails each partition.

Reads through ``streams.lag`` (the same readings ``votescore lag`` prints), keeping one
admin client and the previous reading so that each row carries its rate of change.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka.admin import KafkaAdminClient

from streams import lag
from streams.config import Settings


class LagPanel:
    """Lag rows for the app's consumer group (the Faust app id). Blocking; thread-safe."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._admin: KafkaAdminClient | None = None
        self._previous: lag.LagSnapshot | None = None
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            try:
                self._admin = self._admin or lag.connect(self.settings)
                snapshot = lag.read_lag(self._admin, [self.settings.app_id])
            except Exception:
                self.close()  # reconnect on the next reading
                raise
            snapshot = lag.with_rates(snapshot, self._previous)
            self._previous = snapshot
            return [row.to_dict() for row in snapshot.rows]

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
