"""The one place the external clients are built from the settings.

Today that is the Redis client named by SESSION_CACHE=redis://… (or rediss://… over TLS), which the
session cache and the login limiter share (one connection pool); the lifespan builds it, hands it on
and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.settings import Settings, is_redis_url

DEFAULT_REDIS_PORT = 6379


#: The subscriber's calls wait for a heartbeat's answer, not for a cache call's.
SUBSCRIBER_TIMEOUT_SECONDS = 1.0
#: How the invalidation listener's connections are named (CLIENT LIST, pg_stat_activity).
LISTENER_NAME = "session-invalidations"


@dataclass
class Clients:
    redis: Redis | None = None
    #: the connection held by the invalidation channel's subscription (server/cache/invalidation.py)
    redis_subscriber: Redis | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        """Nothing connects here: clients open connections on first use."""
        url = settings.session_cache
        if not is_redis_url(url):
            return cls()
        return cls(
            redis=redis_client(url, settings.session_cache_timeout),
            redis_subscriber=redis_client(url, SUBSCRIBER_TIMEOUT_SECONDS, client_name=LISTENER_NAME),
        )

    async def close(self) -> None:
        for client in (self.redis, self.redis_subscriber):
            if client is not None:
                await client.aclose()


def redis_client(url: str, socket_timeout: float, client_name: str | None = None) -> Redis:
    """A client for `redis://[user:password@]host[:port][/db]` whose every call is bounded by socket
    timeouts (never by cancelling a call, which once let the next call read the previous reply).

    `rediss://` is the same over TLS, the server's certificate verified against the system's CAs (or
    the bundle named by `?ssl_ca_certs=PATH`) and its host name checked, unless `?ssl_cert_reqs=none`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("expected redis://host:port/db or rediss://host:port/db")
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
        client_name=client_name,
        **(_tls_options(parts.query) if parts.scheme == "rediss" else {}),
    )


def _tls_options(query: str) -> dict[str, Any]:
    options = dict(parse_qsl(query))
    verify = options.get("ssl_cert_reqs", "required") != "none"
    return {
        "ssl": True,
        "ssl_cert_reqs": "required" if verify else "none",
        "ssl_check_hostname": verify,
        "ssl_ca_certs": options.get("ssl_ca_certs"),
    }
