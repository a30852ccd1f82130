"""Commands packed by hiredis are byte for byte what redis-py would send."""

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from streams.redisio import HiredisPackingConnection

COMMANDS = [
    ("EVALSHA", "f" * 40, 2, "voter:{V1}", "attrs:{V1}", b'{"a": 1}', 7, -3, 0.25, 1e-7),
    ("HSET", "voter:{V\u00e9}", "support", 55, "support_low", 40.0),
    ("CONFIG GET", "maxmemory"),
    ("XADD", "changes", "MAXLEN", "~", 100_000, "*", "voter", "V1", "old", ""),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_hiredis_packs_as_redis_py_does(command):
    ours = b"".join(HiredisPackingConnection().pack_command(*command))
    theirs = b"".join(aioredis.Connection().pack_command(*command))

    assert ours == theirs


def test_an_argument_redis_cannot_take_is_a_data_error():
    with pytest.raises(redis.exceptions.DataError):
        HiredisPackingConnection().pack_command("SET", "key", None)
