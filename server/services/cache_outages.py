"""Partial outages of the shared session cache, made known to every instance through the database.

An instance cut off from Redis still ends sessions in the database, but cannot drop their cached
copies, which every other instance would go on finding. So an instance whose cache calls fail posts
its outage on a board in the database (the `cache_outages` table); every instance reads the board
every POLL_SECONDS and trusts the shared cache only while its last read is fresh and shows no
outage, reading sessions from the database otherwise. An invalidation that failed is acknowledged
only NOTICE_SECONDS after its outage was posted, when no instance can still trust a copy it left
behind. The outage is withdrawn once the cache answers again and has been cleared. A row not
refreshed for STALE_SECONDS (its instance died during the outage) is removed, after a clear, by any
instance that reaches the cache.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from models import CacheOutage

logger = logging.getLogger(__name__)

#: How often every instance reads the board.
POLL_SECONDS = 0.25
#: How long one read of the board is trusted: two polls, so one late poll costs no cache hits.
TRUST_SECONDS = 2 * POLL_SECONDS
#: How long after its outage was posted a failed invalidation is acknowledged.
NOTICE_SECONDS = TRUST_SECONDS + 0.1
#: A posted outage not refreshed for this long belongs to an instance that is gone.
STALE_SECONDS = 15.0


class CacheOutageBoard:
    """This instance's view of the board, and its own outage on it."""

    def __init__(self) -> None:
        self.instance = secrets.token_hex(8)
        #: the instances whose outages the last read of the board showed
        self._outages_seen: frozenset[str] = frozenset()
        #: time.monotonic() when the last completed read of the board started
        self._read_at = -float("inf")
        #: the posting of this instance's current outage; its result is when the post was committed
        self._posted: asyncio.Task[float] | None = None

    @property
    def trusted(self) -> bool:
        """Whether the shared cache may be read and written: no other instance's outage posted, as of a
        fresh read. (This instance's own outage is handled where its cache calls fail, and they must go
        on being tried, to see the cache come back.)"""
        return self._outages_seen <= {self.instance} and time.monotonic() - self._read_at < TRUST_SECONDS

    def report(self) -> None:
        """This instance's cache calls started failing: post the outage (in the background)."""
        if self._posted is None or (self._posted.done() and self._posted.exception() is not None):
            self._posted = asyncio.ensure_future(self._post())

    async def acknowledged(self) -> None:
        """Return once every instance has stopped trusting what this instance could not invalidate.

        Raises when the outage cannot be posted (the database is unreachable): then nothing may be
        acknowledged.
        """
        self.report()
        assert self._posted is not None
        committed = await asyncio.shield(self._posted)
        await asyncio.sleep(max(0.0, committed + NOTICE_SECONDS - time.monotonic()))

    async def withdraw(self) -> None:
        """The cache answers again and was cleared after the outage: take this instance's outage down."""
        posted, self._posted = self._posted, None
        if posted is not None:
            await asyncio.gather(posted, return_exceptions=True)
        await CacheOutage.filter(instance=self.instance).delete()

    async def read(self, clear_cache: Callable[[], Awaitable[bool]]) -> None:
        """Read the board once (and refresh this instance's outage while it lasts).

        Stale outages are removed once `clear_cache()` confirms a clear. When the database cannot be
        read, the last reading stands: the cache keeps serving through a database outage, in which
        no session can be ended anyway.
        """
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            if self._posted is not None and self._posted.done() and self._posted.exception() is None:
                await CacheOutage.filter(instance=self.instance).update(seen_at=now)
            rows = await CacheOutage.all().values_list("instance", "seen_at")
        except Exception as error:
            logger.debug("cache outage board unreadable: %s", type(error).__name__)
            self._read_at = started
            return
        stale = [instance for instance, seen_at in rows if seen_at < now - timedelta(seconds=STALE_SECONDS)]
        if stale and await clear_cache():
            await CacheOutage.filter(instance__in=stale).delete()
            logger.info("removed %d cache outages of instances gone; the session cache was cleared", len(stale))
            rows = [row for row in rows if row[0] not in stale]
        seen = frozenset(instance for instance, _ in rows)
        if seen and not self._outages_seen:
            logger.warning("an instance cannot reach the session cache: reading sessions from the database")
        elif self._outages_seen and not seen:
            logger.info("every instance reaches the session cache again")
        self._outages_seen = seen
        self._read_at = started

    async def _post(self) -> float:
        now = datetime.now(UTC)
        await CacheOutage.update_or_create(instance=self.instance, defaults={"since": now, "seen_at": now})
        return time.monotonic()


@asynccontextmanager
async def watching(board: CacheOutageBoard | None, clear_cache: Callable[[], Awaitable[bool]]) -> AsyncIterator[None]:
    """While the block runs, read `board` every POLL_SECONDS (once before it starts); nothing without a board."""
    if board is None:
        yield
        return
    await board.read(clear_cache)

    async def poll() -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await board.read(clear_cache)

    task = asyncio.create_task(poll(), name="cache-outage-board")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
