"""Errors raised on the streaming side: bad events, unreachable services."""

from models.errors import VotescoreError

__all__ = ["VotescoreError", "InvalidEvent", "ServiceUnavailable"]


class InvalidEvent(VotescoreError):
    """An event that cannot be applied; it goes to the dead-letter topic.

    ``reason`` is a short stable code that ops can count and grep
    (``malformed_json``, ``invalid_field``, ``unknown_voter``, ...); ``field``
    names the offending field when there is one.
    """

    def __init__(self, reason: str, detail: str, *, field: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field


class ServiceUnavailable(VotescoreError):
    """Kafka or Redis did not answer within the retry policy."""
