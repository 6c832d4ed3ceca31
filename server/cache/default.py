"""A session cache over an aiocache backend: `SimpleMemoryCache` in tests, `RedisCache` in production.

Entries live under `{namespace}:{generation}:{key}` as JSON strings with a TTL that ends at the
session's `cache_expiry`. The integer under `{namespace}:gen` is the current generation; `clear()`
increments it, so every older entry becomes unreachable at once and later dies by its TTL. This
never scans or flushes the shared cache (aiocache's `clear()` runs FLUSHDB or `KEYS ns:*`).
"""

from __future__ import annotations

import json
import math
import time

from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer, StringSerializer

from server.cached_session import CachedSession

GENERATION_REFRESH_SECONDS = 0.0
"""How long this process trusts its copy of the generation before reading the shared one.

Zero: every lookup reads the generation in the same round trip (MGET), so a clear on another
instance followed by a revocation there can never let this instance serve the revoked session."""


class DefaultSessionCacheStrategy:
    """Sessions in a (possibly shared) aiocache `cache`, isolated by `namespace`.

    The cache must store strings as they are (a `StringSerializer` or `NullSerializer`) and
    should be built with `timeout=None`. A `clear()` on another instance sharing the namespace
    is seen here within `GENERATION_REFRESH_SECONDS`; a local `clear()` is seen at once.
    """

    def __init__(self, cache: BaseCache, namespace: str) -> None:
        if not isinstance(cache.serializer, StringSerializer | NullSerializer):
            raise TypeError(
                f"the cache must use a StringSerializer or NullSerializer, not {type(cache.serializer).__name__}"
            )
        if not namespace:
            raise ValueError("namespace must not be empty")
        self._cache = cache
        self._namespace = namespace
        self._generation_key = f"{namespace}:gen"
        self._generation: int | None = None
        self._generation_read_at = 0.0

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def backend(self) -> BaseCache:
        """The aiocache instance the entries live in (the login limiter shares its Redis client)."""
        return self._cache

    async def set(self, key: str, session: CachedSession) -> None:
        """Store `session` (without its token) until its `cache_expiry`, and at least 1 second."""
        # The last generation seen is good enough: an entry written under one that a clear elsewhere
        # has since replaced is simply never found, and the next lookup learns the new generation.
        generation = self._generation if self._generation is not None else await self._read_generation()
        value = json.dumps(session.to_json(), separators=(",", ":"))
        ttl = max(1, math.ceil(session.cache_expiry - time.time()))
        # A float TTL makes aiocache's RedisCache use PSETEX; with an int it calls redis-py's
        # setex(), deprecated in redis-py 8 (a DeprecationWarning on every write).
        await self._cache.set(self._entry_key(generation, key), value, ttl=float(ttl))

    async def get(self, key: str) -> CachedSession | None:
        """The cached session (token ""), or None if absent, cleared or past its `cache_expiry`."""
        raw = await self._lookup(key)
        if raw is None:
            return None
        session = CachedSession.from_json(json.loads(raw))
        # The TTL is rounded up to whole seconds; never hand out an entry past its expiry.
        if session.cache_expiry <= time.time():
            return None
        return session

    async def delete(self, key: str) -> None:
        """Forget `key` under the shared generation as it is now."""
        # Read the generation afresh: deleting under a stale one could leave behind an entry
        # that another instance wrote after a clear (say, the session being logged out).
        generation = await self._read_generation()
        await self._cache.delete(self._entry_key(generation, key))

    async def clear(self) -> None:
        """Make every entry of this namespace unreachable in O(1) by bumping the generation."""
        await self._read_generation()
        self._remember(int(await self._cache.increment(self._generation_key)))

    async def close(self) -> None:
        """Close the underlying aiocache instance (and with it any connection pool)."""
        await self._cache.close()

    def _entry_key(self, generation: int, key: str) -> str:
        return f"{self._namespace}:{generation}:{key}"

    def _remember(self, generation: int) -> int:
        self._generation = generation
        self._generation_read_at = time.monotonic()
        return generation

    def _generation_is_fresh(self) -> bool:
        return time.monotonic() - self._generation_read_at < GENERATION_REFRESH_SECONDS

    async def _read_generation(self) -> int:
        """Read the shared generation, creating it if it does not exist."""
        raw = await self._cache.get(self._generation_key)
        if raw is not None:
            return self._remember(int(raw))
        # Start from the clock, not 0: if the key is ever lost (eviction, restart), counting again
        # from a small number could make entries cleared before the loss reachable again.
        initial = time.time_ns() // 1_000_000
        try:
            await self._cache.add(self._generation_key, initial)
        except ValueError:
            raw = await self._cache.get(self._generation_key)
            if raw is not None:
                return self._remember(int(raw))
        return self._remember(initial)

    async def _lookup(self, key: str) -> str | None:
        generation = self._generation
        if generation is not None:
            if self._generation_is_fresh():
                return await self._get_str(self._entry_key(generation, key))
            # Re-check the generation in the same round trip as the lookup, so a hot `get`
            # stays one round trip even when the local copy is due for a refresh.
            current, raw = await self._cache.multi_get([self._generation_key, self._entry_key(generation, key)])
            if current is not None and int(current) == generation:
                self._remember(generation)
                return None if raw is None else str(raw)
            if current is not None:
                return await self._get_str(self._entry_key(self._remember(int(current)), key))
        generation = await self._read_generation()
        return await self._get_str(self._entry_key(generation, key))

    async def _get_str(self, full_key: str) -> str | None:
        raw = await self._cache.get(full_key)
        return None if raw is None else str(raw)
