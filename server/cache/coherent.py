"""An in-process first tier that every instance keeps coherent with the others.

`CoherentSessionCache` is a strategy: an in-process LRU in front of `remote` (the shared Redis strategy,
or nothing: then the database is the next tier). Every delete and clear made here is applied to both
tiers and then published on an invalidation channel (server/cache/invalidation.py); every instance
drops the keys it receives from its own first tier. The service calls delete and clear only after its
database commit, so a message is never sent before the change it announces is visible.

The first tier is trusted only while the channel's listener is subscribed. From the moment the
listener loses its connection (it may miss messages) until it has subscribed again and this tier has
been emptied, lookups skip it (to the remote tier, or the database) and nothing is written to it. A
refill that read before a received invalidation is refused by the first tier's fence, as one that
read before a local delete is.

A message that could not be published makes the delete or clear raise, after both tiers were
changed: the guard (server/cache/guarded.py) then treats it as a cache outage, posts it where every
instance reads it, and holds the request until no instance trusts its cached copies any more.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import cast

from server.cache.base import Fence, SessionCacheStrategy
from server.cache.invalidation import Invalidation, InvalidationChannel, split
from server.cache.memory import InMemorySessionCacheStrategy
from server.cached_session import CachedSession
from server.metrics import record_invalidation_received, record_invalidation_sent, record_lookup

logger = logging.getLogger(__name__)

#: How long start-up waits for the first subscription before serving (from the next tier meanwhile).
SUBSCRIBE_WAIT_SECONDS = 2.0

_Fences = tuple[Fence | None, Fence | None]


class CoherentSessionCache:
    def __init__(
        self, local: InMemorySessionCacheStrategy, remote: SessionCacheStrategy | None, channel: InvalidationChannel
    ) -> None:
        self.local = local
        self.remote = remote
        self.channel = channel
        self.instance = secrets.token_hex(8)
        #: whether the first tier may be read and written: the listener is subscribed and nothing was missed
        self.trusted = False
        self._subscribed = asyncio.Event()
        self._lost_since_subscribed = False

    # The listener's side (server/cache/invalidation.py calls these).

    def subscribed(self) -> None:
        # Emptied before it is trusted: whatever it holds may have outlived a message that was missed.
        self.local.forget_all()
        self.trusted = True
        self._subscribed.set()
        if self._lost_since_subscribed:
            logger.info("invalidation channel back: this instance's first cache tier was emptied and is used again")
            self._lost_since_subscribed = False

    def lost(self, reason: str) -> None:
        self.trusted = False
        if not self._lost_since_subscribed:
            logger.warning("invalidation channel lost (%s): the first cache tier is not used until it is back", reason)
            self._lost_since_subscribed = True

    def received(self, message: Invalidation) -> None:
        if message.sender == self.instance:
            return
        record_invalidation_received()
        if message.clear:
            self.local.forget_all()
        else:
            self.local.forget(message.keys)

    async def wait_subscribed(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._subscribed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # The strategy's side.

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        local_fence: Fence | None = None
        if self.trusted:
            cached, local_fence = await self.local.lookup(key)
            if cached is not None:
                record_lookup("first_tier")
                return cached, _fence(local_fence, None)
        if self.remote is None:
            return None, _fence(local_fence, None)
        cached, remote_fence = await self.remote.lookup(key)
        if cached is not None:
            record_lookup("second_tier")
        if cached is not None and local_fence is not None:
            await self.local.set(key, cached, local_fence)  # refused if an invalidation came meanwhile
        return cached, _fence(local_fence, remote_fence)

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Without a fence, in both tiers (the first only while trusted); with one, in each tier whose part
        of the fence is still good."""
        local_fence, remote_fence = cast(_Fences, fence.version) if fence is not None else (None, None)
        if self.remote is not None and (fence is None or remote_fence is not None):
            await self.remote.set(key, session, remote_fence)
        if self.trusted and (fence is None or local_fence is not None):
            await self.local.set(key, session, local_fence)

    async def get(self, key: str) -> CachedSession | None:
        return (await self.lookup(key))[0]

    async def delete(self, key: str) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[str]) -> None:
        remote = self.remote.delete_many(keys) if self.remote is not None else None
        await self._everywhere(remote, self.local.delete_many(keys), split(self.instance, keys))

    async def clear(self) -> None:
        remote = self.remote.clear() if self.remote is not None else None
        await self._everywhere(remote, self.local.clear(), [Invalidation(self.instance, clear=True)])

    async def close(self) -> None:
        if self.remote is not None:
            await self.remote.close()

    async def _everywhere(
        self, remote: Awaitable[None] | None, local: Awaitable[None], messages: list[Invalidation]
    ) -> None:
        """A delete or clear in the remote tier, this tier and every other instance's first tier; the first
        failure is raised once all three were tried."""
        failure: Exception | None = None
        if remote is not None:
            try:
                await remote
            except Exception as error:
                failure = error
        await local
        for message in messages:
            try:
                await self.channel.publish(message)
            except Exception as error:
                failure = failure or error
            else:
                record_invalidation_sent()
        if failure is not None:
            raise failure


def _fence(local: Fence | None, remote: Fence | None) -> Fence:
    """Both tiers' fences in one (the first tier's is None while it is not trusted)."""
    taken = local if local is not None else remote
    return Fence((local, remote), taken.taken_at if taken is not None else 0.0)


@asynccontextmanager
async def listening(strategy: SessionCacheStrategy) -> AsyncIterator[None]:
    """While the block runs, keep a coherent cache's listener subscribed (nothing for other strategies).

    Start-up waits up to SUBSCRIBE_WAIT_SECONDS for the first subscription; without one it serves
    anyway, from the next tier, and the listener keeps trying.
    """
    if not isinstance(strategy, CoherentSessionCache):
        yield
        return
    task = asyncio.create_task(strategy.channel.listen(strategy), name="cache-invalidations")
    try:
        await strategy.wait_subscribed(SUBSCRIBE_WAIT_SECONDS)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
