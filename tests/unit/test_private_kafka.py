"""The private broker of the recovery tests gets a cluster id Kafka's storage tool accepts."""

import base64
import uuid

from bench import chaos


def test_a_cluster_id_that_would_read_as_an_option_is_drawn_again(monkeypatch):
    # 0xF8 encodes to "-" as the first URL-safe base64 character.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" + bytes(15))])
    monkeypatch.setattr(chaos.uuid, "uuid4", lambda: next(draws))

    cluster_id = chaos.new_cluster_id()

    assert cluster_id == base64.urlsafe_b64encode(b"\x01" + bytes(15)).decode().rstrip("=")


def test_cluster_ids_are_22_characters_of_16_random_bytes():
    ids = {chaos.new_cluster_id() for _ in range(2_000)}

    assert len(ids) == 2_000
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 for cluster_id in ids)
