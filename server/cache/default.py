"""A session cache over an aiocache backend: `SimpleMemoryCache` in tests, `RedisCache` in production.

Entries live under `{namespace}:{generation}:{key}` as JSON strings with a TTL that ends at the
session's `cache_expiry`. The integer under `{namespace}:gen` is the current generation; `clear()`
increments it, so every older entry becomes unreachable at once and later dies by its TTL. This
never scans or flushes the shared cache (aiocache's `clear()` runs FLUSHDB or `KEYS ns:*`).

A delete also counts under `{namespace}:t:{key}` (a tombstone kept for TOMBSTONE_SECONDS). A lookup
reads the generation and the tombstone with the entry, in one MGET, and a refill writes back only if
both are unchanged, checked and written in one Lua script: so a lookup on one instance that read the
database before a logout on another can never put the logged-out session back.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Protocol, cast

from aiocache import RedisCache
from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer, StringSerializer

from server.cache.base import MAX_REFILL_SECONDS, TOMBSTONE_SECONDS, Fence
from server.cached_session import CachedSession

#: Keys deleted per script by `delete_many`: one round trip each, short enough not to stall Redis.
DELETE_BATCH = 500


class DefaultSessionCacheStrategy:
    """Sessions in a (possibly shared) aiocache `cache`, isolated by `namespace`.

    The cache must store strings as they are (a `StringSerializer` or `NullSerializer`) and
    should be built with `timeout=None`. Every lookup reads the shared generation in the same round
    trip (MGET), so a `clear()` on any instance sharing the namespace is seen here at once.
    """

    #: how the guard counts a hit (server/metrics.py)
    answers_from = "second_tier"

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
        self._set_if_unchanged, self._invalidate = _scripts(cache)

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def backend(self) -> BaseCache:
        """The aiocache instance the entries live in (the login limiter shares its Redis client)."""
        return self._cache

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        """The cached session (or None), and a fence: the generation and the key's tombstone as read."""
        generation = self._generation
        if generation is None:
            generation = await self._read_generation()
        current, raw, tombstone = await self._cache.multi_get(
            [self._generation_key, self._entry_key(generation, key), self._tombstone_key(key)]
        )
        taken_at = time.monotonic()
        if current is None:  # the generation was lost (eviction, restart): start a new one
            generation = await self._read_generation()
            raw = None
        elif int(current) != generation:
            generation = int(current)
            raw = await self._get_str(self._entry_key(generation, key))
        self._remember(generation)
        return self._decoded(raw), Fence((generation, "" if tombstone is None else str(tombstone)), taken_at)

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Store `session` (without its token) until its `cache_expiry`, and at least 1 second.

        With a fence, only if neither the generation nor the key's tombstone moved since it was taken
        (one atomic script), and only within MAX_REFILL_SECONDS of it.
        """
        value = json.dumps(session.to_json(), separators=(",", ":"))
        ttl = max(1, math.ceil(session.cache_expiry - time.time()))
        if fence is not None:
            if time.monotonic() - fence.taken_at >= MAX_REFILL_SECONDS:
                return
            generation, tombstone = cast(tuple[int, str], fence.version)
            entry_key = self._entry_key(generation, key)
            keys = [self._generation_key, self._tombstone_key(key), entry_key]
            await self._set_if_unchanged(keys=keys, args=[str(generation), tombstone, value, ttl * 1000])
            return
        # The last generation seen is good enough: an entry written under one that a clear elsewhere
        # has since replaced is simply never found, and the next lookup learns the new generation.
        generation = self._generation if self._generation is not None else await self._read_generation()
        # A float TTL makes aiocache's RedisCache use PSETEX; with an int it calls redis-py's
        # setex(), deprecated in redis-py 8 (a DeprecationWarning on every write).
        await self._cache.set(self._entry_key(generation, key), value, ttl=float(ttl))

    async def get(self, key: str) -> CachedSession | None:
        """The cached session (token ""), or None if absent or cleared."""
        return (await self.lookup(key))[0]

    async def delete(self, key: str) -> None:
        """Forget `key` under the shared generation as it is now, and count a tombstone for it.

        One script: the generation is read afresh inside it, since deleting under a stale one could
        leave behind an entry that another instance wrote after a clear (say, the session being logged out).
        """
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[str]) -> None:
        """`delete` of every key, DELETE_BATCH keys per script (one round trip each)."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            script_keys = [self._generation_key, *map(self._tombstone_key, batch)]
            await self._invalidate(keys=script_keys, args=[self._namespace, TOMBSTONE_SECONDS, *batch])

    async def clear(self) -> None:
        """Make every entry of this namespace unreachable in O(1) by bumping the generation."""
        await self._read_generation()
        self._remember(int(await self._cache.increment(self._generation_key)))

    async def close(self) -> None:
        """Close the underlying aiocache instance (and with it any connection pool)."""
        await self._cache.close()

    def _entry_key(self, generation: int, key: str) -> str:
        return f"{self._namespace}:{generation}:{key}"

    def _tombstone_key(self, key: str) -> str:
        return f"{self._namespace}:t:{key}"

    def _remember(self, generation: int) -> int:
        self._generation = generation
        return generation

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

    @staticmethod
    def _decoded(raw: object) -> CachedSession | None:
        # The TTL is rounded up to whole seconds: the guard refuses a copy past its `cache_expiry`.
        return None if raw is None else CachedSession.from_json(json.loads(str(raw)))

    async def _get_str(self, full_key: str) -> str | None:
        raw = await self._cache.get(full_key)
        return None if raw is None else str(raw)


class _Script(Protocol):
    """A check-and-write step called as redis-py calls a registered Lua script."""

    async def __call__(self, *, keys: Sequence[str], args: Sequence[str | int]) -> object: ...


_SET_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return 1
"""

# KEYS: the generation, then one tombstone per key; ARGV: namespace, tombstone TTL, then the keys. An
# entry's key depends on the generation read here, so it is built inside the script (single-node Redis).
_INVALIDATE = """
local generation = redis.call('GET', KEYS[1])
for i = 2, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[2])
  if generation then redis.call('DEL', ARGV[1] .. ':' .. generation .. ':' .. ARGV[i + 1]) end
end
return 1
"""


def _scripts(cache: BaseCache) -> tuple[_Script, _Script]:
    """(set_if_unchanged, invalidate): Lua scripts that Redis runs atomically in one round trip each, or,
    on an in-process aiocache backend (which never suspends inside a call, so nothing runs between a
    check and its write), the same steps in Python."""
    if isinstance(cache, RedisCache):
        client = cache.client
        return client.register_script(_SET_IF_UNCHANGED), client.register_script(_INVALIDATE)

    async def set_if_unchanged(*, keys: Sequence[str], args: Sequence[str | int]) -> object:
        generation_key, tombstone_key, entry_key = keys
        generation, tombstone, value, ttl_ms = args
        current, seen = await cache.multi_get([generation_key, tombstone_key])
        if current is None or str(current) != generation or ("" if seen is None else str(seen)) != tombstone:
            return 0
        return await cache.set(entry_key, value, ttl=int(ttl_ms) / 1000)

    async def invalidate(*, keys: Sequence[str], args: Sequence[str | int]) -> object:
        generation_key, *tombstone_keys = keys
        namespace, tombstone_seconds, *entry_names = args
        generation = await cache.get(generation_key)
        for tombstone_key, name in zip(tombstone_keys, entry_names, strict=True):
            await cache.increment(tombstone_key)
            await cache.expire(tombstone_key, int(tombstone_seconds))
            if generation is not None:
                await cache.delete(f"{namespace}:{generation}:{name}")
        return 1

    return set_if_unchanged, invalidate
