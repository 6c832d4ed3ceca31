"""The coherent first tier, two instances at a time, on the real channels: Redis pub/sub (in front of
a shared Redis tier) and PostgreSQL LISTEN/NOTIFY (memory only, the database being the next tier).

Every wait polls, bounded: a delete on one instance leaves the other's first tier within 100 ms.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from server.cache import (
    CoherentSessionCache,
    InMemorySessionCacheStrategy,
    SessionCacheStrategy,
    build_cache_strategy,
    listening,
)
from server.cache.invalidation import (
    KEYS_PER_MESSAGE,
    Invalidation,
    Message,
    PostgresInvalidationChannel,
    RedisInvalidationChannel,
)
from server.cache.membership import LEASE_SECONDS
from server.clients import redis_client
from server.settings import Settings
from tests.live_server import free_port

from .conftest import SessionFactory

LISTENER = "coherent-test-listener"
#: How soon another instance must have dropped a copy deleted here.
PROPAGATION_SECONDS = 0.1
UNACKNOWLEDGED = "session_service_invalidations_unacknowledged_total"
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
    publisher = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
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
    # a delete that B cannot hear of (A waits for B's lease to run out, B being unable to acknowledge it)
    deleting = asyncio.create_task(pair.a.delete_many(["digest-1"]))
    remote = pair.a.remote
    if remote is not None:
        await eventually(lambda: _not(_holds(remote, "digest-1")), PROPAGATION_SECONDS)
    seen = []
    while not pair.b.trusted:
        seen.append((await pair.b.lookup("digest-1"))[0])
        await asyncio.sleep(0.005)
    await deleting

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


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def _holds(strategy: SessionCacheStrategy, key: str) -> bool:
    return await strategy.get(key) is not None


async def _not(outcome: Awaitable[bool]) -> bool:
    return not await outcome


class Held:
    """What reaches an instance's listener, held back until released: a listener that is slow, or cut
    off silently (its own beats held too, so its lease runs out)."""

    def __init__(self, cache: CoherentSessionCache) -> None:
        self._deliver = cache.received
        self.messages: list[Message] = []
        self.holding = True
        cache.received = self._receive  # type: ignore[method-assign]

    def _receive(self, message: Message) -> None:
        if self.holding:
            self.messages.append(message)
        else:
            self._deliver(message)

    def release(self) -> None:
        self.holding = False
        for message in self.messages:
            self._deliver(message)
        self.messages.clear()


async def test_a_delete_returns_only_once_the_other_instance_has_applied_it(
    pair: Pair, make_session: SessionFactory
) -> None:
    await pair.b.set("digest-1", make_session())
    held = Held(pair.b)

    deleting = asyncio.create_task(pair.a.delete_many(["digest-1"]))
    await eventually(lambda: any(isinstance(m, Invalidation) for m in held.messages), PROPAGATION_SECONDS)
    await asyncio.sleep(0.2)
    # B has not applied it and still holds its lease: the delete is not over
    assert not deleting.done()
    assert pair.b.trusted and await cached_locally(pair.b, "digest-1")

    held.release()
    await asyncio.wait_for(deleting, PROPAGATION_SECONDS)
    assert (await pair.b.lookup("digest-1"))[0] is None


async def test_an_instance_that_hears_nothing_has_lost_its_lease_when_a_delete_returns(
    pair: Pair, make_session: SessionFactory
) -> None:
    await pair.b.set("digest-1", make_session())
    unacknowledged = _sample(UNACKNOWLEDGED)
    Held(pair.b)  # never released: B's link is cut without either side noticing

    started = time.monotonic()
    await pair.a.delete_many(["digest-1"])

    assert time.monotonic() - started < LEASE_SECONDS + 0.5
    assert not pair.b.trusted
    assert (await pair.b.lookup("digest-1"))[0] is None
    assert _sample(UNACKNOWLEDGED) == unacknowledged + 1


async def test_a_revoker_that_cannot_hear_its_own_message_waits_until_every_lease_has_run_out(
    pair: Pair, make_session: SessionFactory
) -> None:
    await pair.b.set("digest-1", make_session())
    Held(pair.b)
    Held(pair.a)  # A hears neither its own invalidation nor B's beats

    await pair.a.delete_many(["digest-1"])

    assert not pair.b.trusted
    assert (await pair.b.lookup("digest-1"))[0] is None


async def test_an_instance_that_departed_is_not_waited_for(pair: Pair, make_session: SessionFactory) -> None:
    await pair.b.depart()
    await eventually(lambda: not pair.a.membership.peers(), PROPAGATION_SECONDS)
    Held(pair.b)
    unacknowledged = _sample(UNACKNOWLEDGED)

    started = time.monotonic()
    await pair.a.delete_many(["digest-1"])

    assert time.monotonic() - started < PROPAGATION_SECONDS
    assert _sample(UNACKNOWLEDGED) == unacknowledged


async def test_randomly_slow_listeners_never_answer_with_a_copy_once_its_delete_returned(
    pair: Pair, make_session: SessionFactory
) -> None:
    rng = random.Random()
    held = Held(pair.b)
    held.release()
    for trial in range(25):
        key = f"digest-{trial}"
        await pair.b.set(key, make_session(id=trial))
        held.holding = True
        delay = rng.choice([0.0, 0.001, 0.01, 0.05, 0.3, 1.5])
        asyncio.get_running_loop().call_later(delay, held.release)

        await pair.a.delete_many([key])

        assert (await pair.b.lookup(key))[0] is None, f"trial {trial}, B held {delay} s"
        await eventually(lambda: not held.holding, 2.0)
        await eventually(lambda: pair.b.trusted, 2.0)


async def test_a_delete_of_no_key_publishes_nothing_and_waits_for_nobody(pair: Pair) -> None:
    sent = _sample("session_service_invalidations_sent_total")

    await asyncio.wait_for(pair.a.delete_many([]), PROPAGATION_SECONDS)

    assert _sample("session_service_invalidations_sent_total") == sent
