"""Brute-force protection: login attempts limited per identifier and per client address.

Each attempt counts against two fixed windows of LOGIN_RATE_LIMIT (say 10 attempts per 3
minutes): one keyed by the SHA-256 digest of the identifier's normal form (server/services/identifiers.py,
invisible characters dropped, so every spelling of one account shares its window), one by the digest of the
client address (an IPv6 address counts as its /64, which one client usually holds whole). An
attempt over either limit is refused before any password is checked, with the seconds left in the
window. A successful login resets its identifier's window, never its address's.

With a Redis session cache the counters live in that Redis under the cache namespace, so every
instance sharing it shares the limits: one MULTI/EXEC round trip per attempt creates each counter
with its expiry if missing (SET NX PX), increments it and reads its time to live. Otherwise, or
while Redis fails, they live in this process in a bounded table.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiocache.backends.redis import RedisBackend

from server.cache.base import SessionCacheStrategy
from server.cache.default import DefaultSessionCacheStrategy
from server.services.errors import RateLimitedError
from server.services.identifiers import fold_identifier
from server.settings import Settings

logger = logging.getLogger(__name__)

#: Counters the in-process table holds at most; the oldest windows are dropped first beyond it.
MAX_LOCAL_COUNTERS = 100_000


def limit_keys(identifier: str, address: str | None) -> list[str]:
    """The counters one attempt counts against: its identifier's and, when known, its address's."""
    keys = ["id:" + _digest(fold_identifier(identifier))]
    if address:
        keys.append("ip:" + _digest(_address_group(address)))
    return keys


def identifier_key(identifier: str) -> str:
    return limit_keys(identifier, None)[0]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _address_group(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginLimiter(Protocol):
    async def attempt(self, keys: Sequence[str]) -> float | None:
        """Count one attempt against every key: None if allowed, else seconds until one is allowed."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the attempts counted against `key`."""
        ...


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

    def __init__(self, client: Any, namespace: str, attempts: int, window: float) -> None:
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


async def check_login_limit(limiter: LoginLimiter | None, identifier: str, client_address: str | None) -> None:
    """Count one password attempt for `identifier` from `client_address`; RateLimitedError when over the limit."""
    if limiter is None:
        return
    retry_after = await limiter.attempt(limit_keys(identifier, client_address))
    if retry_after is not None:
        raise RateLimitedError(retry_after)


def build_login_limiter(cache: SessionCacheStrategy, settings: Settings) -> LoginLimiter | None:
    """None when LOGIN_RATE_LIMIT is off; on the session cache's Redis when it has one; else in process."""
    if settings.login_rate_limit is None:
        return None
    attempts, window = settings.login_rate_limit
    if isinstance(cache, DefaultSessionCacheStrategy) and isinstance(cache.backend, RedisBackend):
        return RedisLoginLimiter(cache.backend.client, cache.namespace, attempts, window)
    return LocalLoginLimiter(attempts, window)
