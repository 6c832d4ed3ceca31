"""The coherent first tier, two instances at a time, on the real channels: Redis pub/sub (in front of
a shared Redis tier) and PostgreSQL LISTEN/NOTIFY (memory only, the database being the next tier).

Every wait polls, bounded: a delete on one instance leaves the other's first tier within 100 ms.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio

from server.cache import CoherentSessionCache, InMemorySessionCacheStrategy, build_cache_strategy, listening
from server.cache.invalidation import (
    KEYS_PER_MESSAGE,
    Invalidation,
    PostgresInvalidationChannel,
    RedisInvalidationChannel,
)
from server.clients import redis_client
from server.settings import Settings
from tests.live_server import free_port

from .conftest import SessionFactory

LISTENER = "coherent-test-listener"
#: How soon another instance must have dropped a copy deleted here.
PROPAGATION_SECONDS = 0.1
#: How soon a listener must notice that its connection was killed (and, later, be back).
RECONNECT_SECONDS = 5.0


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, f"not within {within} s"
        await asyncio.sleep(0.002)


@dataclass
class Pair:
    a: CoherentSessionCache
    b: CoherentSessionCache
    kill_listener_of: Callable[[CoherentSessionCache], Awaitable[None]]
    kind: str


async def _redis_pair(stack: AsyncExitStack, redis_url: str, namespace: str) -> Pair:
    raw = redis.asyncio.Redis.from_url(redis_url)
    stack.push_async_callback(raw.aclose)
    settings = Settings(session_cache=redis_url, session_cache_timeout_ms=1000)
    channel_name = f"{namespace}:invalidations"
    names: dict[int, str] = {}

    def build() -> CoherentSessionCache:
        publisher = redis_client(redis_url, 1.0)
        name = f"{LISTENER}-{secrets.token_hex(4)}"
        subscriber = redis_client(redis_url, 1.0, client_name=name)
        stack.push_async_callback(publisher.aclose)
        stack.push_async_callback(subscriber.aclose)
        remote = build_cache_strategy(settings, namespace)
        stack.push_async_callback(remote.close)
        cache = CoherentSessionCache(
            InMemorySessionCacheStrategy(100), remote, RedisInvalidationChannel(publisher, subscriber, channel_name)
        )
        names[id(cache)] = name
        return cache

    async def kill(cache: CoherentSessionCache) -> None:
        assert await raw.client_kill_filter(_id=await _id_of(names[id(cache)])) == 1

    async def _id_of(name: str) -> str:
        for client in await raw.client_list():
            if client["name"] == name:
                return str(client["id"])
        raise AssertionError(f"no client named {name}")

    async def cleanup() -> None:
        keys = [key async for key in raw.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await raw.delete(*keys)

    stack.push_async_callback(cleanup)
    return Pair(build(), build(), kill, "redis")


async def _postgres_pair(stack: AsyncExitStack, postgres_url: str) -> Pair:
    dsn = postgres_url.replace("postgres://", "postgresql://", 1)
    publisher = await asyncpg.connect(dsn)
    stack.push_async_callback(publisher.close)
    channel_name = f"coherent_test_{secrets.token_hex(6)}"
    names: dict[int, str] = {}

    async def notify(name: str, payload: str) -> None:
        await publisher.execute("SELECT pg_notify($1, $2)", name, payload)

    def build() -> CoherentSessionCache:
        name = f"{LISTENER}-{secrets.token_hex(4)}"

        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(dsn, server_settings={"application_name": name})

        cache = CoherentSessionCache(
            InMemorySessionCacheStrategy(100), None, PostgresInvalidationChannel(notify, connect, channel_name)
        )
        names[id(cache)] = name
        return cache

    async def kill(cache: CoherentSessionCache) -> None:
        killed = await publisher.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            names[id(cache)],
        )
        assert killed == 1

    return Pair(build(), build(), kill, "postgres")


@pytest.fixture(params=["redis", "postgres"])
async def pair(
    request: pytest.FixtureRequest, redis_url: str, postgres_url: str, namespace: str
) -> AsyncIterator[Pair]:
    """Two instances' caches, each with its listener running and subscribed."""
    async with AsyncExitStack() as stack:
        if request.param == "redis":
            built = await _redis_pair(stack, redis_url, namespace)
        else:
            built = await _postgres_pair(stack, postgres_url)
        for cache in (built.a, built.b):
            await stack.enter_async_context(listening(cache))
            assert cache.trusted
        yield built


async def cached_locally(cache: CoherentSessionCache, key: str) -> bool:
    return await cache.local.get(key) is not None


async def test_a_delete_on_one_instance_empties_the_first_tier_of_the_other(
    pair: Pair, make_session: SessionFactory
) -> None:
    await pair.b.set("digest-1", make_session())
    assert await cached_locally(pair.b, "digest-1")

    await pair.a.delete_many(["digest-1"])

    await eventually(lambda: _not(cached_locally(pair.b, "digest-1")), PROPAGATION_SECONDS)
    assert (await pair.b.lookup("digest-1"))[0] is None


async def test_a_clear_on_one_instance_empties_every_first_tier(pair: Pair, make_session: SessionFactory) -> None:
    for number in range(5):
        await pair.b.set(f"digest-{number}", make_session(id=number))

    await pair.a.clear()

    await eventually(lambda: len(pair.b.local) == 0, PROPAGATION_SECONDS)


async def test_thousands_of_keys_arrive_in_messages_that_fit_the_channel(
    pair: Pair, make_session: SessionFactory
) -> None:
    keys = [f"{secrets.token_hex(32)}" for _ in range(KEYS_PER_MESSAGE * 3 + 7)]
    assert len(Invalidation("x" * 16, tuple(keys[:KEYS_PER_MESSAGE])).encode()) < 8000  # NOTIFY's limit
    for key in keys:
        await pair.b.set(key, make_session())
    assert len(pair.b.local) == 100  # the first tier's bound

    await pair.a.delete_many(keys)

    await eventually(lambda: len(pair.b.local) == 0, PROPAGATION_SECONDS * 5)


async def test_a_refill_that_read_before_another_instance_deleted_is_not_cached(
    pair: Pair, make_session: SessionFactory
) -> None:
    # B misses and reads the database; meanwhile A ends the session and B hears of it
    copy, fence = await pair.b.lookup("digest-1")
    assert copy is None
    await pair.a.delete_many(["digest-1"])
    await eventually(lambda: pair.b.local._tombstones.get("digest-1") is not None, PROPAGATION_SECONDS)

    await pair.b.set("digest-1", make_session(), fence)

    assert not await cached_locally(pair.b, "digest-1")


async def test_a_lost_listener_stops_trusting_at_once_and_empties_its_tier_before_trusting_again(
    pair: Pair, make_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.cache.coherent")
    session = make_session()
    await pair.b.set("digest-1", session)
    if pair.kind == "redis":
        await pair.a.set("digest-1", session)

    await pair.kill_listener_of(pair.b)
    await eventually(lambda: not pair.b.trusted, RECONNECT_SECONDS)
    # a delete that B cannot hear of
    await pair.a.delete_many(["digest-1"])
    seen = []
    while not pair.b.trusted:
        seen.append((await pair.b.lookup("digest-1"))[0])
        await asyncio.sleep(0.005)

    assert seen and all(copy is None for copy in seen)
    assert not await cached_locally(pair.b, "digest-1")
    assert (await pair.b.lookup("digest-1"))[0] is None
    lost = [r for r in caplog.records if "invalidation channel lost" in r.getMessage()]
    back = [r for r in caplog.records if "invalidation channel back" in r.getMessage()]
    assert (len(lost), len(back)) == (1, 1)


async def test_while_untrusted_nothing_is_written_to_the_first_tier(pair: Pair, make_session: SessionFactory) -> None:
    await pair.kill_listener_of(pair.b)
    await eventually(lambda: not pair.b.trusted, RECONNECT_SECONDS)
    copy, fence = await pair.b.lookup("digest-1")

    await pair.b.set("digest-1", make_session(), fence)
    await pair.b.set("digest-2", make_session())

    assert len(pair.b.local) == 0 or pair.b.trusted


async def test_a_message_that_cannot_be_published_raises_after_both_tiers_dropped_the_key(
    make_session: SessionFactory,
) -> None:
    nobody = redis_client(f"redis://127.0.0.1:{free_port()}/0", 0.5)  # a port nothing listens on
    remote = InMemorySessionCacheStrategy(10)
    cache = CoherentSessionCache(
        InMemorySessionCacheStrategy(10), remote, RedisInvalidationChannel(nobody, nobody, "unheard")
    )
    cache.subscribed()
    await cache.set("digest-1", make_session())

    with pytest.raises(redis.ConnectionError):
        await cache.delete_many(["digest-1"])
    await nobody.aclose()

    assert await remote.get("digest-1") is None
    assert await cache.local.get("digest-1") is None


async def _not(outcome: Awaitable[bool]) -> bool:
    return not await outcome
