"""The one place the external clients are built from the settings.

Today that is the Redis client named by SESSION_CACHE=redis://…, which the session cache and the
login limiter share (one connection pool); the lifespan builds it, hands it on and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.settings import Settings

DEFAULT_REDIS_PORT = 6379


@dataclass
class Clients:
    redis: Redis | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        """Nothing connects here: clients open connections on first use."""
        url = settings.session_cache
        return cls(redis=redis_client(url, settings.session_cache_timeout) if url.startswith("redis://") else None)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def redis_client(url: str, socket_timeout: float) -> Redis:
    """A client for `redis://[user:password@]host[:port][/db]` whose every call is bounded by socket
    timeouts (never by cancelling a call, which once let the next call read the previous reply)."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("expected redis://host:port/db")
    db = parts.path.strip("/")
    return Redis(
        host=parts.hostname,
        port=parts.port or DEFAULT_REDIS_PORT,
        db=int(db) if db else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        # redis-py's Redis() retries a timed-out call by default, which would stretch every bound
        # fourfold; the caller carries on from the database instead.
        retry=Retry(NoBackoff(), 0),
    )
