"""aiocache's private names we rely on (read in aiocache 0.12.3, aiocache/base.py and backends/redis.py).

- `BaseCache._close(*args, _conn=None, **kwargs)`: what the public `close()` awaits (under its timeout);
  `RedisBackend` implements it as `await self.client.close()`.

The public `close()` carries the timeout decorator and the debug log, so the override goes one level down.
"""

from __future__ import annotations

from typing import Any

from aiocache import RedisCache


class ClientClosingRedisCache(RedisCache):  # type: ignore[misc]  # aiocache ships no type hints
    """`RedisCache` whose `close()` awaits `close_client()`.

    aiocache 0.12.3 calls redis-py's `close()`, deprecated since redis 5.0.1 (a DeprecationWarning
    on every shutdown); `close_client()` uses `aclose()`, which also closes a pool the client owns.
    """

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        await self.close_client()

    async def close_client(self) -> None:
        await self.client.aclose()
