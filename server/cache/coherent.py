"""An in-process first tier that every instance keeps coherent with the others.

`CoherentSessionCache` is a strategy: an in-process LRU in front of `remote` (the shared Redis strategy,
or nothing: then the database is the next tier). Every delete and clear made here is applied to both
tiers and then published on an invalidation channel (server/cache/invalidation.py); every instance
drops the keys it receives from its own first tier. The service calls delete and clear only after its
database commit, so a message is never sent before the change it announces is visible.

The first tier is trusted only while the channel's listener is subscribed and this instance holds a
lease (server/cache/membership.py: its own beats come back within LEASE_SECONDS). From the moment the
listener loses its connection (it may miss messages) until it has subscribed again and this tier has
been emptied, and whenever its beats stop coming back (a link cut silently), lookups skip it (to the
remote tier, or the database) and nothing is written to it. A refill that read before a received
invalidation is refused by the first tier's fence, as one that read before a local delete is.

A delete or clear returns only once every instance that may trust its first tier has acknowledged
it, or has lost its lease (at most LEASE_SECONDS): when the caller hears a session is ended, no
instance answers with it any more.

A message that could not be published makes the delete or clear raise, after both tiers were
changed: the guard (server/cache/guarded.py) then treats it as a cache outage, posts it where every
instance reads it, and holds the request until no instance trusts its cached copies any more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import cast

from server.cache.base import Fence, SessionCacheStrategy
from server.cache.invalidation import (
    Acknowledgement,
    Beat,
    Departure,
    Invalidation,
    InvalidationChannel,
    Message,
    split,
)
from server.cache.membership import BEAT_SECONDS, Membership
from server.cache.memory import InMemorySessionCacheStrategy
from server.cached_session import CachedSession
from server.metrics import (
    record_invalidation_received,
    record_invalidation_sent,
    record_invalidation_unacknowledged,
    record_lookup,
)

logger = logging.getLogger(__name__)

#: How long start-up waits for the first subscription before serving (from the next tier meanwhile).
SUBSCRIBE_WAIT_SECONDS = 2.0
#: How long a departing instance tries to say so.
DEPARTURE_SECONDS = 0.5

_Fences = tuple[Fence | None, Fence | None]


class CoherentSessionCache:
    def __init__(
        self, local: InMemorySessionCacheStrategy, remote: SessionCacheStrategy | None, channel: InvalidationChannel
    ) -> None:
        self.local = local
        self.remote = remote
        self.channel = channel
        self.instance = secrets.token_hex(8)
        self.membership = Membership()
        #: the listener is subscribed and nothing was missed since this tier was last emptied
        self._subscribed = False
        self._leased = asyncio.Event()
        self._beat_now = asyncio.Event()
        self._lost_since_subscribed = False
        self._acknowledgements_due: dict[str, int] = {}
        self._acknowledging: asyncio.Task[None] | None = None

    @property
    def trusted(self) -> bool:
        """Whether the first tier may be read and written: subscribed, nothing missed, and a lease held."""
        return self._subscribed and self.membership.holds_lease()

    # The listener's side (server/cache/invalidation.py calls these).

    def subscribed(self) -> None:
        # Emptied before it is trusted: whatever it holds may have outlived a message that was missed.
        self.local.forget_all()
        self._subscribed = True
        self._beat_now.set()
        if self._lost_since_subscribed:
            logger.info("invalidation channel back: this instance's first cache tier was emptied and is used again")
            self._lost_since_subscribed = False

    def lost(self, reason: str) -> None:
        self._subscribed = False
        self.membership.lease_lost()
        if not self._lost_since_subscribed:
            logger.warning("invalidation channel lost (%s): the first cache tier is not used until it is back", reason)
            self._lost_since_subscribed = True

    def received(self, message: Message) -> None:
        mine = message.sender == self.instance
        if isinstance(message, Invalidation):
            if mine:
                self.membership.returned(message.number)
                return
            record_invalidation_received()
            if message.clear:
                self.local.forget_all()
            else:
                self.local.forget(message.keys)
            if message.number:
                self._acknowledge(message.sender, message.number)
        elif isinstance(message, Beat):
            if not mine:
                self.membership.heard(message.sender)
            elif self._subscribed and self.membership.beat_returned(message.number):
                self._leased.set()
        elif isinstance(message, Acknowledgement):
            self.membership.acknowledged(message.sender, message.number)
        elif not mine:
            self.membership.departed(message.sender)

    async def wait_subscribed(self, seconds: float) -> bool:
        """Whether the first tier became trusted within `seconds`."""
        try:
            await asyncio.wait_for(self._leased.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def beat(self) -> None:
        """Publish a beat every BEAT_SECONDS, and at once after each subscription, until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._beat_now.wait(), BEAT_SECONDS)
            except TimeoutError:
                pass
            self._beat_now.clear()
            if not self._subscribed:
                continue
            try:
                await self.channel.publish(Beat(self.instance, self.membership.beat_sent()))
            except Exception as error:  # the lease runs out unless a later beat gets through
                logger.debug("a beat could not be published: %s", type(error).__name__)

    async def depart(self) -> None:
        """Stop trusting the first tier for good, and tell the others not to wait for this instance."""
        self._subscribed = False
        self.membership.lease_lost()
        try:
            await asyncio.wait_for(self.channel.publish(Departure(self.instance)), DEPARTURE_SECONDS)
        except Exception as error:  # the others wait for this instance's lease to run out instead
            logger.debug("the departure could not be published: %s", type(error).__name__)

    def _acknowledge(self, sender: str, number: int) -> None:
        """Tell `sender` its invalidations up to `number` were applied; acknowledgements to one sender are
        sent one at a time, a later number standing for the earlier ones."""
        self._acknowledgements_due[sender] = max(number, self._acknowledgements_due.get(sender, 0))
        if self._acknowledging is None or self._acknowledging.done():
            self._acknowledging = asyncio.create_task(self._send_acknowledgements(), name="cache-acknowledgements")

    async def _send_acknowledgements(self) -> None:
        while self._acknowledgements_due:
            due, self._acknowledgements_due = self._acknowledgements_due, {}
            outcomes = await asyncio.gather(
                *(self.channel.publish(Acknowledgement(self.instance, n), to=sender) for sender, n in due.items()),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):  # the sender waits for this instance's lease instead
                    logger.debug("an acknowledgement could not be published: %s", type(outcome).__name__)

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
        """A delete or clear in the remote tier, this tier and every other instance's first tier, returning
        once every instance that may trust its first tier has applied it; the first failure is raised
        once all three were tried."""
        failure: Exception | None = None
        if remote is not None:
            try:
                await remote
            except Exception as error:
                failure = error
        await local
        if not messages:  # no key named: nothing for another instance to drop
            if failure is not None:
                raise failure
            return
        numbers = self.membership.numbered(len(messages))
        for message, number in zip(messages, numbers, strict=True):
            try:
                await self.channel.publish(dataclasses.replace(message, number=number))
            except Exception as error:
                failure = failure or error
            else:
                record_invalidation_sent()
        if failure is not None:
            self.membership.abandon(numbers[-1])
            raise failure
        if not await self.membership.reached(numbers[-1], time.monotonic()):
            record_invalidation_unacknowledged()


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
    tasks = [
        asyncio.create_task(strategy.channel.listen(strategy), name="cache-invalidations"),
        asyncio.create_task(strategy.beat(), name="cache-beats"),
    ]
    try:
        await strategy.wait_subscribed(SUBSCRIBE_WAIT_SECONDS)
        yield
    finally:
        await strategy.depart()
        await _stopped(tasks)


async def _stopped(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` until every one has ended: a cancellation that arrives as a redis-py read's own
    timeout expires can be lost (seen on Python 3.11), and the listener would then go on for ever."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
    await asyncio.gather(*tasks, return_exceptions=True)
