"""The aiocache-backed strategy on a real Redis: TTLs, O(1) clear, generations and timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from aiocache import SimpleMemoryCache
from aiocache.serializers import JsonSerializer

from server.cache import DefaultSessionCacheStrategy, build_cache_strategy
from server.settings import Settings
from tests.live_server import free_port

from .conftest import SessionFactory

RedisStrategies = Callable[..., DefaultSessionCacheStrategy]


async def entry_keys(raw_redis: redis.asyncio.Redis, namespace: str) -> list[bytes]:
    """The session entry keys of `namespace` (the generation key left out)."""
    keys = [key async for key in raw_redis.scan_iter(match=f"{namespace}:*")]
    return [key for key in keys if key != f"{namespace}:gen".encode()]


def record_commands(strategy: DefaultSessionCacheStrategy, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Redis commands `strategy` sends from now on, in order."""
    client = strategy._cache.client
    original = client.execute_command
    commands: list[str] = []

    async def recording(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]).upper())
        return await original(*args, **options)

    monkeypatch.setattr(client, "execute_command", recording)
    return commands


async def test_an_entry_expires_with_its_cache_expiry_and_the_generation_never_does(
    redis_strategies: RedisStrategies, raw_redis: redis.asyncio.Redis, namespace: str, make_session: SessionFactory
) -> None:
    strategy = redis_strategies()

    await strategy.set("digest-1", make_session(cache_ttl=120))

    [key] = await entry_keys(raw_redis, namespace)
    assert 0 < await raw_redis.ttl(key) <= 120
    assert await raw_redis.ttl(f"{namespace}:gen") == -1


async def test_the_stored_value_is_json_without_the_raw_token(
    redis_strategies: RedisStrategies, raw_redis: redis.asyncio.Redis, namespace: str, make_session: SessionFactory
) -> None:
    session = make_session(token="raw-token-must-not-be-cached", with_user=True)
    await redis_strategies().set("digest-1", session)

    [key] = await entry_keys(raw_redis, namespace)
    raw = await raw_redis.get(key)

    assert raw is not None
    assert b"raw-token-must-not-be-cached" not in raw
    assert json.loads(raw) == session.to_json()


async def test_clear_touches_only_our_keys_and_never_flushes(
    redis_strategies: RedisStrategies,
    raw_redis: redis.asyncio.Redis,
    namespace: str,
    make_session: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategy = redis_strategies()
    foreign = f"foreign-{uuid.uuid4().hex}"
    await raw_redis.set(foreign, "keep me", ex=60)
    try:
        await strategy.set("digest-1", make_session())
        [old_key] = await entry_keys(raw_redis, namespace)
        commands = record_commands(strategy, monkeypatch)

        await strategy.clear()

        assert await strategy.get("digest-1") is None
        assert await raw_redis.get(foreign) == b"keep me"
        # O(1): the old entry is left to its TTL, not searched for and deleted.
        assert await raw_redis.exists(old_key) == 1
        assert not {"FLUSHDB", "FLUSHALL", "KEYS", "SCAN", "DEL"} & set(commands)
    finally:
        await raw_redis.delete(foreign)


async def test_a_clear_elsewhere_is_seen_at_once(
    redis_strategies: RedisStrategies, make_session: SessionFactory
) -> None:
    here, elsewhere = redis_strategies(), redis_strategies()
    before, after = make_session(id=1), make_session(id=2)
    await here.set("digest-1", before)
    assert await elsewhere.get("digest-1") == before.without_token()

    await here.clear()

    assert await here.get("digest-1") is None
    assert await elsewhere.get("digest-1") is None
    await here.set("digest-1", after)
    assert await elsewhere.get("digest-1") == after.without_token()


async def test_a_hot_get_is_one_round_trip(
    redis_strategies: RedisStrategies, make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = redis_strategies()
    session = make_session()
    await strategy.set("digest-1", session)
    commands = record_commands(strategy, monkeypatch)

    assert await strategy.get("digest-1") == session.without_token()
    assert commands == ["MGET"]

    commands.clear()
    assert await strategy.get("digest-1") == session.without_token()
    assert commands == ["MGET"]


async def test_a_lost_generation_key_does_not_bring_cleared_entries_back(
    redis_strategies: RedisStrategies, raw_redis: redis.asyncio.Redis, namespace: str, make_session: SessionFactory
) -> None:
    strategy = redis_strategies()
    await strategy.set("digest-1", make_session())
    await strategy.clear()

    await raw_redis.delete(f"{namespace}:gen")
    fresh_instance = redis_strategies()

    assert await fresh_instance.get("digest-1") is None


async def test_redis_socket_timeouts_come_from_the_settings() -> None:
    settings = Settings(session_cache="redis://127.0.0.1:6390/3", session_cache_timeout_ms=75)
    strategy = build_cache_strategy(settings)
    assert isinstance(strategy, DefaultSessionCacheStrategy)
    try:
        cache = strategy._cache
        pool_kwargs = cache.client.connection_pool.connection_kwargs
        assert (pool_kwargs["host"], pool_kwargs["port"], pool_kwargs["db"]) == ("127.0.0.1", 6390, 3)
        assert pool_kwargs["socket_timeout"] == pool_kwargs["socket_connect_timeout"] == 0.075
        assert cache.timeout is None
    finally:
        await strategy.close()


def test_a_cache_that_would_json_encode_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="JsonSerializer"):
        DefaultSessionCacheStrategy(SimpleMemoryCache(serializer=JsonSerializer(), timeout=None), "sessions")


@pytest.fixture
def private_redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, which it may make slow with DEBUG SLEEP."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    arguments += ["--enable-debug-command", "yes", "--dir", str(tmp_path)]
    process = subprocess.Popen([binary, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 5
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=5)


async def test_a_timed_out_get_cannot_hand_out_another_keys_value(
    private_redis_url: str, make_session: SessionFactory
) -> None:
    settings = Settings(session_cache=private_redis_url, session_cache_timeout_ms=100)
    strategy = build_cache_strategy(settings)
    blocker = redis.asyncio.Redis.from_url(private_redis_url)
    try:
        alice, bob = make_session(id=1), make_session(id=2)
        await strategy.set("digest-alice", alice)
        await strategy.set("digest-bob", bob)
        sleeping = asyncio.create_task(blocker.execute_command("DEBUG", "SLEEP", "0.5"))  # type: ignore[no-untyped-call]
        await asyncio.sleep(0.1)

        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await strategy.get("digest-alice")
        assert time.monotonic() - started < 0.3
        await sleeping

        assert await strategy.get("digest-bob") == bob.without_token()
    finally:
        await strategy.close()
        await blocker.aclose()
