"""The live dashboard: score histograms, top targets, precincts, the change feed, voter
lookup and guarded target-list exports, read from Redis as a read-only user."""

from streams.dashboard.command import register

__all__ = ["register"]
