"""Where login attempts are counted: in a shared Redis, or in this process (LoginLimiter strategies).

With a Redis session cache the counters live in that Redis under the cache namespace, so every
instance sharing it shares the limits: one MULTI/EXEC round trip per attempt creates each counter
with its expiry if missing (SET NX PX), increments it and reads its time to live. Otherwise, or
while Redis fails, they live in this process in a bounded table.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

#: Counters the in-process table holds at most; the oldest windows are dropped first beyond it.
MAX_LOCAL_COUNTERS = 100_000


class LocalLoginLimiter:
    """Fixed windows in this process, at most `max_counters` of them."""

    def __init__(
        self,
        attempts: int,
        window: float,
        max_counters: int = MAX_LOCAL_COUNTERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._attempts = attempts
        self._window = window
        self._max_counters = max_counters
        self._clock = clock
        #: key -> [attempts, window end]; in order of window start, so in order of window end too
        self._counters: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counters)

    async def attempt(self, keys: Sequence[str]) -> float | None:
        now = self._clock()
        counters = self._counters
        while counters:
            oldest = next(iter(counters.values()))
            if oldest[1] > now:
                break
            counters.popitem(last=False)
        retry_after: float | None = None
        for key in keys:
            counter = counters.get(key)
            if counter is None:
                counter = counters[key] = [0, now + self._window]
            counter[0] += 1
            if counter[0] > self._attempts:
                retry_after = max(retry_after or 0.0, counter[1] - now)
        while len(counters) > self._max_counters:
            counters.popitem(last=False)
        return retry_after

    async def reset(self, key: str) -> None:
        self._counters.pop(key, None)


class RedisLoginLimiter:
    """Fixed windows in a shared Redis under `{namespace}:login:`; this process's table while Redis fails."""

    def __init__(self, client: Redis, namespace: str, attempts: int, window: float) -> None:
        self._client = client
        self._prefix = f"{namespace}:login:"
        self._attempts = attempts
        self._window_ms = max(1, math.ceil(window * 1000))
        self._fallback = LocalLoginLimiter(attempts, window)
        self._failing = False

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    async def attempt(self, keys: Sequence[str]) -> float | None:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key in keys:
                    full = self.redis_key(key)
                    pipe.set(full, 0, px=self._window_ms, nx=True)
                    pipe.incr(full)
                    pipe.pttl(full)
                results = await pipe.execute()
        except Exception as error:
            self._failed(error)
            return await self._fallback.attempt(keys)
        self._recovered()
        retry_after: float | None = None
        for index, key in enumerate(keys):
            count, ttl_ms = int(results[3 * index + 1]), int(results[3 * index + 2])
            if ttl_ms < 0:  # a counter without an expiry would lock its key out for good
                ttl_ms = self._window_ms
                await self._client.pexpire(self.redis_key(key), ttl_ms)
            if count > self._attempts:
                retry_after = max(retry_after or 0.0, ttl_ms / 1000)
        return retry_after

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._client.delete(self.redis_key(key))
        except Exception as error:
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("login limiter: Redis unavailable, counting in this process: %s", type(error).__name__)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("login limiter: Redis available again")
