"""One instance cut off from the shared cache while the other still reaches it.

Instance B cannot drop the cached copies of what it ends or changes in the database, so it posts its
outage on the board in the database (server/services/cache_outages.py) and acknowledges only once
instance A must have read it; A reads sessions from the database until B is back. Two service
instances on one PostgreSQL database and one Redis namespace, each with its own board reader; B's
cache calls fail while `cut` is set, as a dropped link makes them fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import pytest_asyncio

from models import CacheOutage
from server.cache import Fence, GuardedSessionCache, SessionCacheStrategy, build_cache_strategy
from server.cached_session import CachedSession
from server.services import Services
from server.services.cache_outages import NOTICE_SECONDS, POLL_SECONDS, STALE_SECONDS, CacheOutageBoard, watching
from server.services.request_context import RequestContext
from server.services.tokens import token_digest
from server.settings import Settings

pytestmark = pytest.mark.backends("postgres")

PASSWORD = "pw-alice-123"
#: A board read every POLL_SECONDS: long enough for each instance to have read it twice.
SETTLE = 3 * POLL_SECONDS + 0.2


class Partitioned:
    """A strategy whose every call fails while `cut` is set, and is passed through otherwise."""

    def __init__(self, inner: SessionCacheStrategy) -> None:
        self.inner = inner
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise ConnectionError("the link to the cache is down")

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        self._check()
        return await self.inner.lookup(key)

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        self._check()
        await self.inner.set(key, session, fence)

    async def get(self, key: str) -> CachedSession | None:
        self._check()
        return await self.inner.get(key)

    async def delete(self, key: str) -> None:
        self._check()
        await self.inner.delete(key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self._check()
        await self.inner.delete_many(keys)

    async def clear(self) -> None:
        self._check()
        await self.inner.clear()

    async def close(self) -> None:
        await self.inner.close()


class Instance:
    def __init__(self, services: Services, cache: Partitioned, board: CacheOutageBoard) -> None:
        self.services, self.cache, self.board = services, cache, board

    async def cached(self, token: str) -> CachedSession | None:
        """What the shared cache holds for `token`, read past any partition."""
        return await self.cache.inner.get(token_digest(token))


@pytest_asyncio.fixture
async def instances(db: object, settings: Settings) -> AsyncIterator[tuple[Instance, Instance]]:
    async with AsyncExitStack() as stack:
        made = []
        for _ in range(2):
            cache = Partitioned(build_cache_strategy(settings, namespace=settings.session_cache_namespace))
            stack.push_async_callback(cache.close)
            board = CacheOutageBoard()
            guarded = GuardedSessionCache(cache, outages=board)
            services = Services.build(guarded, settings)
            await stack.enter_async_context(watching(board, guarded.cleared))
            made.append(Instance(services, cache, board))
        yield made[0], made[1]


async def login(instance: Instance) -> CachedSession:
    services = instance.services
    channel = await services.channels.get_default_channel()
    user = await services.users.create("alice@example.com", PASSWORD)
    session = await services.auth.login(RequestContext(channel_id=channel.id, session=None), user.identifier, PASSWORD)
    assert isinstance(session, CachedSession)
    return session


async def test_a_logout_on_an_instance_cut_off_from_the_cache_is_honoured_by_the_other_at_once(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    session = await login(a)
    assert await a.services.sessions.get_session_from_token(session.token) is not None
    assert await a.cached(session.token) is not None  # A would answer from this copy

    b.cache.cut = True
    started = time.monotonic()
    assert await b.services.sessions.delete_session(session) is True
    acknowledged_after = time.monotonic() - started

    assert await a.cached(session.token) is not None  # B could not drop it...
    assert await a.services.sessions.get_session_from_token(session.token) is None  # ...and A does not trust it
    assert acknowledged_after >= NOTICE_SECONDS - 0.05
    assert cast(list[str], await CacheOutage.all().values_list("instance", flat=True)) == [b.board.instance]


async def test_a_cart_started_on_the_cut_off_instance_is_seen_by_the_other(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    guest = await a.services.sessions.create_anonymous_session()
    assert await a.services.sessions.get_session_from_token(guest.token) == guest  # cached without an order

    b.cache.cut = True
    order, _ = await b.services.orders.add_item_to_order(guest, "sku-1", 2)

    seen = await a.services.sessions.get_session_from_token(guest.token)
    assert seen is not None and seen.active_order_id == order.id
    active = await a.services.orders.get_active_order(seen)
    assert active is not None and [(line.product_variant_id, line.quantity) for line in active.lines] == [("sku-1", 2)]


async def test_when_the_link_is_back_the_cache_is_cleared_and_trusted_again(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    session = await login(a)
    await a.services.sessions.get_session_from_token(session.token)
    b.cache.cut = True
    await b.services.sessions.delete_session(session)

    b.cache.cut = False
    other = await b.services.sessions.create_anonymous_session()  # B's first cache call succeeds: clear, withdraw
    await asyncio.sleep(SETTLE)

    assert await CacheOutage.all().count() == 0
    assert await a.cached(session.token) is None  # gone with the clear
    assert a.board.trusted and b.board.trusted
    assert await a.services.sessions.get_session_from_token(other.token) is not None
    assert await a.cached(other.token) is not None  # cached again


async def test_an_outage_left_by_an_instance_that_died_is_cleared_and_removed(
    instances: tuple[Instance, Instance],
) -> None:
    a, _ = instances
    session = await login(a)
    await a.services.sessions.get_session_from_token(session.token)
    long_ago = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS + 1)
    await CacheOutage.create(instance="gone", since=long_ago, seen_at=long_ago)

    await asyncio.sleep(SETTLE)

    assert await CacheOutage.all().count() == 0
    assert await a.cached(session.token) is None  # what the dead instance may have missed is gone
    assert a.board.trusted
