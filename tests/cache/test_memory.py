"""The in-process LRU: bounded, evicting the least recently used entry (unlike Vendure's)."""

from __future__ import annotations

import pytest

from server.cache import InMemorySessionCacheStrategy, NoopSessionCacheStrategy, build_cache_strategy
from server.settings import Settings

from .conftest import SessionFactory


async def test_the_least_recently_used_entry_is_evicted_and_a_recently_read_one_survives(
    make_session: SessionFactory,
) -> None:
    cache = InMemorySessionCacheStrategy(max_size=3)
    sessions = {number: make_session(id=number) for number in (1, 2, 3, 4)}
    for number in (1, 2, 3):
        await cache.set(f"digest-{number}", sessions[number])
    assert await cache.get("digest-1") is not None  # now the most recently used

    await cache.set("digest-4", sessions[4])

    assert len(cache) == 3
    assert await cache.get("digest-2") is None
    assert await cache.get("digest-1") == sessions[1].without_token()
    assert await cache.get("digest-3") is not None
    assert await cache.get("digest-4") is not None


async def test_setting_an_existing_key_refreshes_it_without_growing(make_session: SessionFactory) -> None:
    cache = InMemorySessionCacheStrategy(max_size=2)
    await cache.set("digest-1", make_session(id=1))
    await cache.set("digest-2", make_session(id=2))

    await cache.set("digest-1", make_session(id=1))
    await cache.set("digest-3", make_session(id=3))

    assert len(cache) == 2
    assert await cache.get("digest-2") is None
    assert await cache.get("digest-1") is not None


async def test_the_size_never_exceeds_max_size(make_session: SessionFactory) -> None:
    cache = InMemorySessionCacheStrategy(max_size=3)

    for number in range(50):
        await cache.set(f"digest-{number}", make_session(id=number))

    assert len(cache) == 3
    assert [await cache.get(f"digest-{number}") is not None for number in (46, 47, 48, 49)] == [
        False,
        True,
        True,
        True,
    ]


async def test_a_stale_entry_is_replaced_by_its_refill_and_never_grows_the_cache(make_session: SessionFactory) -> None:
    cache = InMemorySessionCacheStrategy(max_size=3)
    await cache.set("digest-stale", make_session(cache_ttl=-1))
    fresh = make_session()
    await cache.set("digest-stale", fresh, (await cache.lookup("digest-stale"))[1])

    assert await cache.get("digest-stale") == fresh.without_token()
    assert len(cache) == 1


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        InMemorySessionCacheStrategy(0)


def test_build_cache_strategy_picks_memory_with_the_configured_size_and_noop() -> None:
    memory = build_cache_strategy(Settings(session_cache="memory", session_cache_size=7))
    noop = build_cache_strategy(Settings(session_cache="noop"))

    assert isinstance(memory, InMemorySessionCacheStrategy)
    assert memory.max_size == 7
    assert isinstance(noop, NoopSessionCacheStrategy)


def test_build_cache_strategy_rejects_an_unknown_cache() -> None:
    with pytest.raises(ValueError, match="memcached"):
        build_cache_strategy(Settings(session_cache="memcached://127.0.0.1:11211"))
