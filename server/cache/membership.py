"""Leases on the first tier, and knowing when an invalidation has reached every instance that trusts one.

An instance may answer from its first tier only while it holds a lease: every BEAT_SECONDS it
publishes a beat, and when its own beat comes back on its subscription it knows that every
invalidation published before that beat was sent has been delivered to it, and applied (the channel
delivers in the order it accepted). It may then trust its tier until LEASE_SECONDS after the beat was
sent. A listener cut off silently stops getting its beats back, so its lease runs out within
LEASE_SECONDS, however long the heartbeat takes to notice.

So an invalidation accepted by the channel at time p is, by p + LEASE_SECONDS, either applied by
every instance or held by an instance whose lease has run out. An instance that revokes waits no
longer than that before its caller hears the session is ended, and usually much less: each
instance acknowledges every invalidation it applies, and the beats of the others tell who might
hold a lease. When the sender hears its own invalidation back, every beat accepted before it has
been heard too; an instance whose beat came later either had applied the invalidation before that
beat returned to it, or had subscribed after it (and emptied its tier then). So the instances heard
from until the echo, less those whose lease has run out, are the ones whose acknowledgement is
awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

#: How often an instance publishes a beat.
BEAT_SECONDS = 0.25
#: How long after sending a beat that came back an instance trusts its first tier; also the longest
#: an invalidation waits for instances that do not acknowledge it.
LEASE_SECONDS = 1.0


@dataclass(slots=True)
class _Pending:
    """An invalidation of this instance, awaiting its echo and then the acknowledgements of `peers`."""

    #: the instances that may hold a lease, and when each was last heard of, as of the echo
    peers: dict[str, float] | None = None


class Membership:
    """This instance's lease, the other instances heard of, and the invalidations awaiting them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: this instance's first tier may be trusted until then (while the listener is subscribed)
        self.lease_until = -float("inf")
        self._beats_sent: dict[int, float] = {}
        self._last_beat = 0
        self._last_invalidation = 0
        #: the other instances heard of: when each one's last beat arrived
        self._heard: dict[str, float] = {}
        #: the latest invalidation of this instance each other instance acknowledged
        self._acknowledged: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._changed = asyncio.Event()

    # This instance's lease.

    def beat_sent(self) -> int:
        """The number of a beat about to be published."""
        self._last_beat += 1
        self._beats_sent[self._last_beat] = self._clock()
        return self._last_beat

    def beat_returned(self, number: int) -> bool:
        """This instance's own beat came back; whether that renewed the lease."""
        sent_at = self._beats_sent.get(number)
        if sent_at is None:  # sent before the subscription it came back on
            return False
        for older in [n for n in self._beats_sent if n <= number]:
            del self._beats_sent[older]
        self.lease_until = max(self.lease_until, sent_at + LEASE_SECONDS)
        return True

    def lease_lost(self) -> None:
        """The listener lost its subscription: what comes back from now on proves nothing of before."""
        self.lease_until = -float("inf")
        self._beats_sent.clear()

    def holds_lease(self) -> bool:
        return self._clock() < self.lease_until

    # The other instances.

    def peers(self) -> list[str]:
        """The other instances that may hold a lease, as far as this one has heard."""
        now = self._clock()
        return [instance for instance, at in self._heard.items() if at + LEASE_SECONDS > now]

    def heard(self, instance: str) -> None:
        self._heard[instance] = self._clock()

    def departed(self, instance: str) -> None:
        """`instance` stopped trusting its first tier for good (it is shutting down)."""
        self._heard.pop(instance, None)
        self._acknowledged.pop(instance, None)
        self._wake()

    def acknowledged(self, instance: str, number: int) -> None:
        """`instance` applied this instance's invalidations up to `number`."""
        if number > self._acknowledged.get(instance, 0):
            self._acknowledged[instance] = number
            self._wake()

    # This instance's invalidations.

    def numbered(self, count: int) -> list[int]:
        """The numbers of `count` invalidations about to be published, the last of which will be awaited
        (registered now: its echo may come back before the publisher hears its publish was accepted)."""
        first = self._last_invalidation + 1
        self._last_invalidation += count
        self._pending[self._last_invalidation] = _Pending()
        return list(range(first, self._last_invalidation + 1))

    def abandon(self, number: int) -> None:
        """Invalidation `number` could not be published: nothing will be awaited."""
        self._pending.pop(number, None)

    def returned(self, number: int) -> None:
        """This instance's own invalidation `number` came back: whoever beat before it is awaited."""
        pending = self._pending.get(number)
        if pending is None or pending.peers is not None:
            return
        now = self._clock()
        self._heard = {instance: at for instance, at in self._heard.items() if at + LEASE_SECONDS > now}
        pending.peers = dict(self._heard)
        self._wake()

    async def reached(self, number: int, published_at: float) -> bool:
        """Return once every instance that may trust its first tier has applied invalidation `number`
        (and every one before it), which the channel had accepted by `published_at`. Whether they all
        acknowledged it (False: some lease had to run out)."""
        pending = self._pending.setdefault(number, _Pending())
        try:
            while True:
                changed = self._changed
                now = self._clock()
                wake_at = published_at + LEASE_SECONDS
                if now >= wake_at:
                    return False
                if pending.peers is not None:
                    silent = {
                        instance: heard_at + LEASE_SECONDS
                        for instance, heard_at in pending.peers.items()
                        if self._acknowledged.get(instance, 0) < number and instance in self._heard
                    }
                    awaited = [until for until in silent.values() if until > now]
                    if not awaited:
                        return not silent
                    wake_at = min(wake_at, max(awaited))
                try:
                    await asyncio.wait_for(changed.wait(), wake_at - now)
                except TimeoutError:
                    pass
        finally:
            self._pending.pop(number, None)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
