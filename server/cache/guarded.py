"""The session cache as the service sees it: calls that never raise, copies that are never stale.

Every strategy is reached through this one layer (the factory in server/cache/__init__.py applies it),
which owns the cache policy:

- A failing or slow call (each bounded by the client's socket timeout) is logged once per outage, and
  its caller carries on from the database.
- Deletes that failed during an outage leave entries behind (a logged-out session, say), which a cache
  that was only slow or cut off still holds when it answers again. So the first call that succeeds
  after an outage clears the cache, and no result obtained before that clear is used.
- A copy is returned only before its `cache_expiry` and its `expires`, by the service's clock.
- A refill is written back only within MAX_REFILL_SECONDS of the lookup that took its fence.
- With several instances on one shared cache, an outage of this instance is posted where the others
  read it (`OutageNotice`), a lookup answers nothing while another instance's outage is posted, and
  an invalidation this instance could not make returns only once no instance can trust what it left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from server.cache.base import MAX_REFILL_SECONDS, Fence, SessionCacheStrategy
from server.cached_session import CachedSession
from server.metrics import LookupOutcome, record_cache_fallback, record_cache_outage, record_lookup

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: A lookup that found nothing to use: no copy, and no fence, so nothing read meanwhile is cached.
_NOTHING: tuple[CachedSession | None, Fence | None] = (None, None)


class OutageNotice(Protocol):
    """How instances sharing a cache learn of one another's outages (server/services/cache_outages.py)."""

    @property
    def trusted(self) -> bool:
        """False while another instance's outage is posted, or this instance's view of them is not fresh."""
        ...

    def report(self) -> None:
        """This instance's cache calls started failing."""
        ...

    async def acknowledged(self) -> None:
        """Return once no instance can trust what this one failed to invalidate."""
        ...

    async def withdraw(self) -> None:
        """The cache answers again and has been cleared."""
        ...


class GuardedSessionCache:
    """`strategy` behind the cache policy; `clock` is the service's (unix seconds)."""

    def __init__(
        self,
        strategy: SessionCacheStrategy,
        clock: Callable[[], float] = time.time,
        outages: OutageNotice | None = None,
    ) -> None:
        self.strategy = strategy
        self._clock = clock
        self._outages = outages
        #: how a hit is counted; a strategy with tiers of its own counts its hits itself
        self._hit: LookupOutcome | None = getattr(strategy, "answers_from", None)
        self._failing = False
        #: counts the clears made when the cache came back; a result read before one is not trusted
        self._epoch = 0

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        """A fresh cached copy (or None), and the fence a refill of `key` must present (None: do not refill)."""
        if self._outages is not None and not self._outages.trusted:
            return _NOTHING
        cached, fence = await self._call(self.strategy.lookup(key), _NOTHING)
        if cached is not None:
            if cached.cache_expiry > self._clock() and cached.expires > datetime.fromtimestamp(self._clock(), UTC):
                if self._hit is not None:
                    record_lookup(self._hit)
                return cached, fence
            cached = None
        if fence is None and not self._failing:  # the lookup was the first after an outage, which cleared
            fence = (await self._call(self.strategy.lookup(key), _NOTHING))[1]
        return None, fence

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Cache `session`; a refill (`fence` given) only within MAX_REFILL_SECONDS of its lookup, whatever
        the strategy: the clean job relies on it (RECENTLY_EXPIRED in server/services/session_deletes.py)."""
        if fence is not None and time.monotonic() - fence.taken_at >= MAX_REFILL_SECONDS:
            return
        await self._call(self.strategy.set(key, session, fence), None)

    async def forget(self, keys: Sequence[str]) -> None:
        """Drop the copies of sessions changed or ended in the database (keys are token digests)."""
        if keys:
            await self._invalidate(self.strategy.delete_many(keys))

    async def clear(self) -> None:
        """Forget every cached session (a Channel or Role changed)."""
        await self._invalidate(self.strategy.clear())

    async def cleared(self) -> bool:
        """Clear the strategy directly, outside the outage handling; whether it worked."""
        try:
            await self.strategy.clear()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.strategy.close()

    async def _invalidate(self, call: Awaitable[None]) -> None:
        if not await self._call(_done(call), False) and self._failing and self._outages is not None:
            await self._outages.acknowledged()

    async def _call(self, call: Awaitable[T], fallback: T) -> T:
        failing, epoch = self._failing, self._epoch
        try:
            result = await call
        except Exception as error:
            record_cache_fallback()
            if not self._failing:
                self._failing = True
                record_cache_outage()
                logger.warning("session cache unavailable, using the database: %s", type(error).__name__)
                if self._outages is not None:
                    self._outages.report()
            return fallback
        if self._failing:
            await self._clear_after_outage()
            return fallback
        if failing or epoch != self._epoch:
            return fallback
        return result

    async def _clear_after_outage(self) -> None:
        if not await self.cleared() or not self._failing:
            return  # still failing (a later call tries again), or another call recovered meanwhile
        self._failing = False
        self._epoch += 1
        logger.info("session cache available again; cleared, since deletes may have been lost meanwhile")
        if self._outages is not None:
            try:
                await self._outages.withdraw()
            except Exception as error:  # the outage is no longer refreshed: it goes stale and is removed
                logger.warning("could not withdraw the cache outage: %s", type(error).__name__)


async def _done(call: Awaitable[None]) -> bool:
    await call
    return True
