"""Redis access for the dashboard: a read-only user for every page, a separate writer for audits.

The dashboard shows sensitive scores to many people, so the connection that serves
pages is made unable to change anything by Redis itself (an ACL user), not by the
dashboard's good behaviour. Only the export audit writes, through its own connection.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import redis.asyncio as aioredis

from streams.config import Settings
from streams.logs import get_logger, kv

log = get_logger(__name__)

# Connection housekeeping. (redis-py also tries CLIENT SETINFO, which Redis 7.0 lacks
# and redis-py treats as optional, so it is not granted.)
_CONNECT_COMMANDS = ("+ping", "+hello", "+select", "+client|setname")
# Pub/sub, for readers listening to channels under the namespace.
_PUBSUB_COMMANDS = (
    "+subscribe",
    "+psubscribe",
    "+unsubscribe",
    "+punsubscribe",
)


def reader_name(settings: Settings) -> str:
    """The ACL user of one deployment's dashboards (one per app id, so tests stay apart)."""
    return f"{settings.app_id}-dashboard"


def reader_rules(settings: Settings, password: str) -> list[str]:
    """ACL SETUSER rules: read-only keys and channels under the namespace, read commands only."""
    pattern = _glob_escape(settings.redis_namespace) + "*"
    return [
        "reset",
        "on",
        f">{password}",
        f"%R~{pattern}",  # read-only key permission (Redis 7+): no write reaches a key
        f"&{pattern}",
        "-@all",
        "+@read",
        "-@dangerous",  # KEYS and friends: a dashboard must not stall the server
        *_CONNECT_COMMANDS,
        *_PUBSUB_COMMANDS,
    ]


async def create_reader(admin: aioredis.Redis, settings: Settings) -> tuple[str, str]:
    """Create (or reset) the read-only user with a fresh password; return (user, password).

    Each start rotates the password, so a leaked one is good only until the next start.
    """
    user, password = reader_name(settings), secrets.token_urlsafe(24)
    await admin.execute_command("ACL", "SETUSER", user, *reader_rules(settings, password))
    log.info("Created the dashboard's read-only Redis user. %s", kv(user=user))
    return user, password


def auditor_name(settings: Settings) -> str:
    """The ACL user that may append to the export audit stream and do nothing else."""
    return f"{settings.app_id}-dashboard-audit"


def auditor_rules(settings: Settings, password: str) -> list[str]:
    audit_key = _glob_escape(settings.key("exports"))
    return ["reset", "on", f">{password}", f"~{audit_key}", "-@all", "+xadd", *_CONNECT_COMMANDS]


async def create_auditor(admin: aioredis.Redis, settings: Settings) -> tuple[str, str]:
    """Create (or reset) the audit user; return (user, password)."""
    user, password = auditor_name(settings), secrets.token_urlsafe(24)
    await admin.execute_command("ACL", "SETUSER", user, *auditor_rules(settings, password))
    return user, password


async def drop_users(admin: aioredis.Redis, settings: Settings) -> None:
    """Remove both dashboard users (tests and teardown)."""
    await admin.execute_command("ACL", "DELUSER", reader_name(settings), auditor_name(settings))


def connect_as(redis_url: str, user: str, password: str) -> aioredis.Redis:
    """A client on the same server as ``redis_url``, authenticated as another user."""
    parts = urlsplit(redis_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return aioredis.Redis.from_url(urlunsplit(parts._replace(netloc=netloc)), decode_responses=True)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
