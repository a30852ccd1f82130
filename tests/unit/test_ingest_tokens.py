"""Ingest tokens (stored hashed, per source) and per-source rate limits."""

from __future__ import annotations

import stat

import pytest

from streams.errors import VotescoreError
from streams.ingest import RateLimiter, TokenStore


def test_a_new_token_maps_to_its_source_and_only_its_hash_is_stored(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token = store.add("north-canvass")

    assert store.source_for(token) == "north-canvass"
    assert store.source_for(token + "x") is None
    stored = (tmp_path / "tokens.json").read_text()
    assert token not in stored and "north-canvass" in stored
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600


def test_a_running_store_sees_tokens_added_and_revoked_by_the_command(tmp_path):
    service_view = TokenStore(tmp_path / "tokens.json")
    command = TokenStore(tmp_path / "tokens.json")
    assert service_view.source_for("vs_anything") is None

    first = command.add("state-party")
    second = command.add("state-party")
    assert service_view.source_for(first) == "state-party"
    assert command.sources() == {"state-party": 2}

    assert command.revoke("state-party") == 2
    assert service_view.source_for(second) is None


def test_a_source_name_must_be_a_plain_identifier(tmp_path):
    with pytest.raises(VotescoreError, match="must match"):
        TokenStore(tmp_path / "tokens.json").add("bad source/../x")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_source_has_its_own_bucket_that_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)

    assert limiter.take("a", 20) == 0
    assert limiter.take("a", 1) == pytest.approx(0.1)
    assert limiter.take("b", 20) == 0  # another source is untouched

    clock.now = 0.5
    assert limiter.take("a", 5) == 0
    assert limiter.take("a", 1) > 0
