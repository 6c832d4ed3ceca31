"""Session cache strategies, the guard every one of them is used through, and the one place that
picks a strategy (and the login limiter's store) from the settings."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from aiocache.serializers import StringSerializer
from redis.asyncio import Redis

from server.cache.base import Fence, SessionCacheStrategy
from server.cache.coherent import CoherentSessionCache, listening
from server.cache.default import DefaultSessionCacheStrategy
from server.cache.guarded import GuardedSessionCache, OutageNotice
from server.cache.invalidation import InvalidationChannel, PostgresInvalidationChannel, RedisInvalidationChannel
from server.cache.login_limiters import LocalLoginLimiter, RedisLoginLimiter
from server.cache.memory import InMemorySessionCacheStrategy
from server.cache.noop import NoopSessionCacheStrategy
from server.clients import LISTENER_NAME, redis_client
from server.compat.aiocache_private import ClientClosingRedisCache
from server.database import connect_postgres, is_postgres, notify
from server.settings import Settings

__all__ = [
    "CoherentSessionCache",
    "InvalidationChannel",
    "build_invalidation_channel",
    "listening",
    "DefaultSessionCacheStrategy",
    "Fence",
    "GuardedSessionCache",
    "InMemorySessionCacheStrategy",
    "NoopSessionCacheStrategy",
    "OutageNotice",
    "SessionCacheStrategy",
    "build_cache_strategy",
    "build_login_limiter",
    "build_session_cache",
]


def build_session_cache(
    settings: Settings,
    namespace: str = "sessions",
    *,
    redis: Redis | None = None,
    clock: Callable[[], float] = time.time,
    outages: OutageNotice | None = None,
    channel: InvalidationChannel | None = None,
) -> GuardedSessionCache:
    """The strategy SESSION_CACHE names, behind the guard (see server/cache/guarded.py).

    With an invalidation `channel` (see `build_invalidation_channel`), SESSION_CACHE=memory becomes a
    first tier kept coherent with other instances, and SESSION_CACHE=redis://… gains one in front of
    Redis (unless SESSION_CACHE_FIRST_TIER is off): see server/cache/coherent.py.
    """
    strategy = build_cache_strategy(settings, namespace, redis=redis)
    if channel is not None and settings.session_cache != "noop":
        if isinstance(strategy, InMemorySessionCacheStrategy):
            strategy = CoherentSessionCache(strategy, None, channel)
        elif settings.session_cache_first_tier:
            first_tier = InMemorySessionCacheStrategy(settings.session_cache_size)
            strategy = CoherentSessionCache(first_tier, strategy, channel)
    return GuardedSessionCache(strategy, clock, outages)


def build_invalidation_channel(
    settings: Settings, namespace: str, *, redis: Redis | None = None, subscriber: Redis | None = None
) -> InvalidationChannel | None:
    """Redis pub/sub when the cache is in Redis (`redis` publishes, `subscriber` listens), else PostgreSQL's
    LISTEN/NOTIFY when the database is PostgreSQL; None when neither (one SQLite file is one instance's,
    see server/instance_lock.py)."""
    name = invalidation_channel_name(namespace)
    if redis is not None and subscriber is not None:
        return RedisInvalidationChannel(redis, subscriber, name)
    if settings.session_cache != "noop" and is_postgres(settings.database_url):
        url = settings.database_url
        return PostgresInvalidationChannel(notify, lambda: connect_postgres(url, LISTENER_NAME), name)
    return None


def invalidation_channel_name(namespace: str) -> str:
    """A channel per cache namespace, within PostgreSQL's 63-byte identifiers."""
    return f"session_invalidations_{hashlib.sha256(namespace.encode()).hexdigest()[:16]}"


def build_cache_strategy(
    settings: Settings, namespace: str = "sessions", *, redis: Redis | None = None
) -> SessionCacheStrategy:
    """The strategy named by `settings.session_cache`: "memory", "noop" or "redis://host:port/db".

    A Redis strategy uses `redis` (the client of server/clients.py, which its owner closes) or, without
    one, a client of its own, closed with the strategy. Nothing connects here.
    """
    url = settings.session_cache
    if url == "memory":
        return InMemorySessionCacheStrategy(settings.session_cache_size)
    if url == "noop":
        return NoopSessionCacheStrategy()
    if settings.uses_redis:
        owned = redis is None
        client = redis_client(url, settings.session_cache_timeout) if redis is None else redis
        return DefaultSessionCacheStrategy(_RedisCache(client, owned), namespace)
    raise ValueError(f"unknown session cache {url.split('://', 1)[0]!r}: expected memory, noop or redis://")


def build_login_limiter(
    settings: Settings, redis: Redis | None, namespace: str
) -> LocalLoginLimiter | RedisLoginLimiter | None:
    """None when LOGIN_RATE_LIMIT is off; counters in `redis` (shared by every instance) when the session
    cache is in Redis; else in this process."""
    if settings.login_rate_limit is None:
        return None
    attempts, window = settings.login_rate_limit
    if redis is not None:
        return RedisLoginLimiter(redis, namespace, attempts, window)
    return LocalLoginLimiter(attempts, window)


class _RedisCache(ClientClosingRedisCache):
    """aiocache's `RedisCache` on a client built elsewhere, its calls bounded by the client's socket
    timeouts rather than by aiocache's `asyncio.wait_for` (timeout=None).

    aiocache 0.12.3 builds a client (and an unused, unconnected pool) of its own, replaced here. On
    close it calls redis-py's `close()`, deprecated since redis 5.0.1; this closes an owned client
    with `aclose()` and leaves a shared one to its owner.
    """

    def __init__(self, client: Redis, owned: bool) -> None:
        super().__init__(serializer=StringSerializer(), timeout=None)
        self.client = client
        self._owned = owned

    async def close_client(self) -> None:
        if self._owned:
            await self.client.aclose()
