"""Tokens that name no session, remembered in the process (server/services/unknown_tokens.py).

A replayed unknown token costs no query (nor a cache call) for SESSION_NEGATIVE_CACHE_TTL; the memory
holds at most SESSION_NEGATIVE_CACHE_SIZE tokens however many are tried; concurrent lookups of one
unknown token share one read; an ended session replayed stays ended. Queries are counted from
Tortoise's statement log (tests/services/support.py, QueryLog); no time is measured.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

import server.services.session_refill as session_refill_module
import server.services.stored_session as stored_session_module
from models import Session
from server.cache import GuardedSessionCache, build_invalidation_channel, build_session_cache, listening
from server.cache.base import Fence
from server.cached_session import CachedSession
from server.clients import Clients
from server.services import Services, SessionService
from server.services.orders_merge import MERGED_SESSION_GRACE
from server.services.request_context import RequestContext
from server.services.session import ENDED_BY_LOGIN
from server.services.tokens import token_digest
from server.services.unknown_tokens import UNKNOWN, UnknownTokens
from server.settings import Settings
from tests.services.support import FakeClock, Kit, KitFactory, QueryLog, RecordingCache, make_user


def random_token() -> str:
    return secrets.token_urlsafe(32)


def negative_cache_hits() -> float:
    value = REGISTRY.get_sample_value("session_service_session_lookups_total", {"outcome": "negative_cache"})
    return value or 0.0


# The memory itself: bounded, expiring, O(1) per call.


def test_a_flood_of_distinct_tokens_never_grows_the_memory_past_its_size() -> None:
    memory = UnknownTokens(size=100, ttl=60, clock=FakeClock())

    for _ in range(10_000):
        memory.remember(token_digest(random_token()), UNKNOWN)

    assert len(memory) == 100


def test_the_least_recently_used_token_is_forgotten_first() -> None:
    memory = UnknownTokens(size=2, ttl=60, clock=FakeClock())
    memory.remember("a", UNKNOWN)
    memory.remember("b", UNKNOWN)

    assert memory.answer("a") is UNKNOWN  # "a" is now the most recently used
    memory.remember("c", UNKNOWN)

    assert [memory.answer(key) for key in ("a", "b", "c")] == [UNKNOWN, None, UNKNOWN]


def test_a_token_is_forgotten_after_the_ttl_or_its_own_end_if_sooner() -> None:
    clock = FakeClock()
    memory = UnknownTokens(size=10, ttl=60, clock=clock)
    memory.remember("unknown", UNKNOWN)
    memory.remember("ended", ENDED_BY_LOGIN, until=clock.now + 10)

    clock.advance(9.9)
    assert (memory.answer("unknown"), memory.answer("ended")) == (UNKNOWN, ENDED_BY_LOGIN)
    clock.advance(0.1)
    assert (memory.answer("unknown"), memory.answer("ended")) == (UNKNOWN, None)
    clock.advance(50)
    assert memory.answer("unknown") is None
    assert len(memory) == 0


@pytest.mark.parametrize(("size", "ttl"), [(0, 60.0), (100, None)])
def test_size_zero_or_no_ttl_remembers_nothing(size: int, ttl: float | None) -> None:
    memory = UnknownTokens(size=size, ttl=ttl, clock=FakeClock())

    memory.remember("a", UNKNOWN)

    assert memory.answer("a") is None
    assert len(memory) == 0


# Through the service, on both backends.


async def test_a_replayed_unknown_token_costs_no_query_and_no_cache_call(kit: Kit, queries: QueryLog) -> None:
    token = random_token()
    queries.clear()
    assert await kit.sessions.get_session_from_token(token) is None
    assert queries.count == 1
    calls, hits = len(kit.cache.calls), negative_cache_hits()

    for _ in range(50):
        assert await kit.sessions.get_session_from_token(token) is None

    assert queries.count == 1, queries.statements
    assert len(kit.cache.calls) == calls
    assert negative_cache_hits() == hits + 50


async def test_an_unknown_token_is_read_again_once_its_lifetime_is_over(
    make_kit: KitFactory, queries: QueryLog
) -> None:
    kit = make_kit(session_negative_cache_ttl=60.0)
    token = random_token()
    queries.clear()

    await kit.sessions.get_session_from_token(token)
    kit.clock.advance(59)
    await kit.sessions.get_session_from_token(token)
    assert queries.count == 1
    kit.clock.advance(1)
    await kit.sessions.get_session_from_token(token)
    await kit.sessions.get_session_from_token(token)

    assert queries.count == 2, queries.statements


async def test_a_flood_of_distinct_tokens_reaches_the_database_once_each_and_the_memory_stays_bounded(
    make_kit: KitFactory, queries: QueryLog
) -> None:
    # given a memory of 50 tokens
    kit = make_kit(session_negative_cache_size=50)
    tokens = [random_token() for _ in range(200)]
    queries.clear()

    # when 200 distinct unknown tokens are tried, each of them twice in a row
    for token in tokens:
        assert await kit.sessions.get_session_from_token(token) is None
        assert await kit.sessions.get_session_from_token(token) is None

    # then each reached the database once; the last 50 are still remembered, the first ones were let go
    assert queries.count == 200
    for token in tokens[-50:]:
        assert await kit.sessions.get_session_from_token(token) is None
    assert queries.count == 200
    assert await kit.sessions.get_session_from_token(tokens[0]) is None
    assert queries.count == 201


async def test_with_size_zero_every_lookup_of_an_unknown_token_reads_the_database(
    make_kit: KitFactory, queries: QueryLog
) -> None:
    kit = make_kit(session_negative_cache_size=0)
    token = random_token()
    queries.clear()

    for _ in range(3):
        assert await kit.sessions.get_session_from_token(token) is None

    assert queries.count == 3


async def test_implausible_tokens_reach_neither_the_database_nor_the_memory(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    for length in (0, 257, 10_000):
        assert await kit.sessions.get_session_from_token("x" * length) is None

    assert queries.count == 0
    assert kit.cache.calls == []


async def test_a_valid_session_is_never_answered_from_the_memory(kit: Kit, queries: QueryLog) -> None:
    # given a session whose copy is no longer cached, read twice from the database
    session = await kit.sessions.create_anonymous_session()
    for _ in range(2):
        kit.cache.entries.clear()
        queries.clear()

        # then each lookup finds it
        assert await kit.sessions.get_session_from_token(session.token) == session
        assert queries.count == 1


class CountingGuard(GuardedSessionCache):
    """The guard, counting the lookups that have returned (a barrier for the test below)."""

    returned = 0

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        found = await super().lookup(key)
        self.returned += 1
        return found


async def test_concurrent_lookups_of_one_unknown_token_share_one_read(
    make_kit: KitFactory, cache: RecordingCache, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a first lookup held right after its database read
    kit = make_kit()
    guard = CountingGuard(cache, clock)
    sessions = SessionService(guard, kit.settings, clock)
    reads: list[str] = []
    first_read, release = asyncio.Event(), asyncio.Event()

    async def held_read(key: str, *args: Any) -> Any:
        reads.append(key)
        found = await stored_session_module.load_stored_session(key, *args)
        first_read.set()
        await release.wait()
        return found

    monkeypatch.setattr(session_refill_module, "load_stored_session", held_read)
    token = random_token()
    first = asyncio.create_task(sessions.get_session_from_token(token))
    await first_read.wait()

    # when 19 more lookups of the same token have passed the cache and reached the read
    others = [asyncio.create_task(sessions.get_session_from_token(token)) for _ in range(19)]
    while guard.returned < 20:
        await asyncio.sleep(0)
    release.set()

    # then all of them are answered by the one read
    assert await asyncio.gather(first, *others) == [None] * 20
    assert reads == [token_digest(token)]


async def test_concurrent_lookups_of_a_valid_session_all_find_it(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    kit.cache.entries.clear()

    found = await asyncio.gather(*(kit.sessions.get_session_from_token(session.token) for _ in range(5)))

    assert found == [session] * 5


async def test_a_revoked_token_replayed_stays_dead_without_further_queries(kit: Kit, queries: QueryLog) -> None:
    # given a logged-in session, cached
    user = await make_user("alice")
    session = await kit.login(user)
    assert await kit.sessions.get_session_from_token(session.token) == session

    # when it is logged out and its token replayed
    await kit.sessions.delete_session(session)
    queries.clear()
    replays = [await kit.sessions.get_session_from_token(session.token) for _ in range(10)]

    # then it stays dead, and only the first replay read the database
    assert replays == [None] * 10
    assert queries.count == 1


async def test_a_guest_session_ended_by_a_login_is_remembered_as_such_until_its_grace_is_over(
    kit: Kit, queries: QueryLog
) -> None:
    # given a guest with a cart who logged in: the guest session ends, with a grace period
    guest = await kit.sessions.create_anonymous_session()
    guest = (await kit.orders.add_item_to_order(guest, "a", 1))[1]
    await kit.login(await make_user("alice"), guest)
    queries.clear()

    # then its token is ENDED_BY_LOGIN, read once
    for _ in range(3):
        assert await kit.sessions.resolve_token(guest.token) == (ENDED_BY_LOGIN, False)
    assert queries.count == 1

    # and once the grace is over, unknown, read once more
    kit.clock.advance(MERGED_SESSION_GRACE.total_seconds())
    for _ in range(3):
        assert await kit.sessions.resolve_token(guest.token) == (None, False)
    assert queries.count == 2


async def test_an_expired_session_is_remembered_as_unknown(make_kit: KitFactory, queries: QueryLog) -> None:
    kit = make_kit(session_duration=100)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(100)
    queries.clear()

    for _ in range(3):
        assert await kit.sessions.get_session_from_token(session.token) is None

    assert queries.count == 1
    assert await Session.filter(token_hash=session.cache_key).exists()  # the row is still there


# Several instances with their coherent first tiers (Redis pub/sub on the postgres backend).


@asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[Services]:
    """One instance as the lifespan wires it: the cache SESSION_CACHE names, with a first tier kept
    coherent by the invalidation channel when there is one."""
    clients = Clients.from_settings(settings)
    namespace = settings.session_cache_namespace
    channel = build_invalidation_channel(settings, namespace, redis=clients.redis, subscriber=clients.redis_subscriber)
    cache = build_session_cache(settings, namespace, redis=clients.redis, channel=channel)
    try:
        async with listening(cache.strategy):
            yield Services.build(cache, settings)
    finally:
        await cache.close()
        await clients.close()


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 200) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the attempts given")


@pytest.mark.backends("postgres")
async def test_a_token_revoked_on_one_instance_stays_dead_on_every_instance(
    db: object, settings: Settings, queries: QueryLog
) -> None:
    async with instance(settings) as a, instance(settings) as b:
        # given a session cached in both instances' first tiers
        channel = await a.channels.get_default_channel()
        user = await make_user("alice")
        session = await a.sessions.create_new_authenticated_session(
            RequestContext(channel_id=channel.id), user, "native"
        )
        assert await b.sessions.get_session_from_token(session.token) == session
        before = negative_cache_hits()

        # when it is logged out on A and replayed on both, many times
        await a.sessions.delete_session(session)

        async def dead_on_b() -> bool:
            return await b.sessions.get_session_from_token(session.token) is None

        await eventually(dead_on_b)
        queries.clear()
        replays = [await s.get_session_from_token(session.token) for s in (a.sessions, b.sessions) for _ in range(20)]

        # then it stays dead everywhere, and each instance read the database at most once for it
        assert replays == [None] * 40
        assert queries.count == 1, queries.statements  # B already remembers it; A reads it once
        assert negative_cache_hits() == before + 39
