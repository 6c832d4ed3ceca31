"""Session cache strategies, and the one place that picks a strategy from the settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from aiocache import RedisCache
from aiocache.serializers import StringSerializer

from server.cache.base import Fence, SessionCacheStrategy
from server.cache.default import DefaultSessionCacheStrategy
from server.cache.memory import InMemorySessionCacheStrategy
from server.cache.noop import NoopSessionCacheStrategy
from server.settings import Settings

__all__ = [
    "DefaultSessionCacheStrategy",
    "Fence",
    "InMemorySessionCacheStrategy",
    "NoopSessionCacheStrategy",
    "SessionCacheStrategy",
    "build_session_cache",
]

_DEFAULT_REDIS_PORT = 6379


def build_session_cache(settings: Settings, namespace: str = "sessions") -> SessionCacheStrategy:
    """The strategy named by `settings.session_cache`: "memory", "noop" or "redis://host:port/db".

    Nothing connects here: a Redis strategy opens connections on first use.
    """
    url = settings.session_cache
    if url == "memory":
        return InMemorySessionCacheStrategy(settings.session_cache_size)
    if url == "noop":
        return NoopSessionCacheStrategy()
    if url.startswith("redis://"):
        return DefaultSessionCacheStrategy(build_redis_cache(url, settings.session_cache_timeout), namespace)
    raise ValueError(f"unknown session cache {url.split('://', 1)[0]!r}: expected memory, noop or redis://")


def build_redis_cache(url: str, socket_timeout: float) -> RedisCache:
    """An aiocache `RedisCache` for `redis://[user:password@]host[:port][/db]` whose calls are bounded
    by redis-py socket timeouts rather than by aiocache's `asyncio.wait_for`.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("expected redis://host:port/db")
    db = parts.path.strip("/")
    # aiocache 0.12.3's RedisBackend builds the ConnectionPool itself: `create_connection_timeout`
    # becomes the pool's socket_connect_timeout (None would disable redis-py's default), and
    # `connection_pool_kwargs` are passed on as they are, which is where socket_timeout goes.
    pool_kwargs: dict[str, Any] = {"socket_timeout": socket_timeout}
    if parts.username:
        pool_kwargs["username"] = unquote(parts.username)
    return _RedisCache(
        endpoint=parts.hostname,
        port=parts.port or _DEFAULT_REDIS_PORT,
        db=int(db) if db else 0,
        password=unquote(parts.password) if parts.password else None,
        serializer=StringSerializer(),
        timeout=None,
        create_connection_timeout=socket_timeout,
        connection_pool_kwargs=pool_kwargs,
    )


class _RedisCache(RedisCache):  # type: ignore[misc]  # aiocache ships no type hints
    """`RedisCache` that closes its client with `aclose()`.

    aiocache 0.12.3 calls redis-py's `close()`, deprecated since redis 5.0.1 (a DeprecationWarning
    on every shutdown). The client owns its pool (`auto_close_connection_pool`), so this closes it.
    """

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        await self.client.aclose()
