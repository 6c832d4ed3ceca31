"""The behaviour every session cache strategy shares, run against each of them.

`noop` caches nothing, so it runs only the tests whose expectation depends on `case.stores`;
the tests that need an entry to be stored are narrowed to the storing strategies by marker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.cache import GuardedSessionCache, SessionCacheStrategy

from .conftest import SessionFactory, StrategyCase, StrategyFactory

stores_only = pytest.mark.strategy_cases(stores=True)


async def test_set_then_get_returns_an_equal_session_without_token(
    case: StrategyCase, strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    session = make_session(token="secret-token")
    await strategy.set("digest-1", session)

    cached = await strategy.get("digest-1")

    if not case.stores:
        assert cached is None
        return
    assert cached == session.without_token()
    assert cached is not None
    assert cached.token == ""
    assert cached.expires == session.expires
    assert cached.expires.utcoffset() == timedelta(0)


@stores_only
async def test_user_with_channel_permissions_round_trips_exactly(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    session = make_session(with_user=True)
    await strategy.set("digest-user", session)

    cached = await strategy.get("digest-user")

    assert cached == session.without_token()
    assert cached is not None and cached.user is not None and session.user is not None
    assert cached.user.channel_permissions == session.user.channel_permissions
    assert cached.user.permissions_on(1) == session.user.permissions_on(1) != frozenset()


async def test_get_of_an_unknown_key_is_none(strategy: SessionCacheStrategy, make_session: SessionFactory) -> None:
    await strategy.set("digest-known", make_session())

    assert await strategy.get("digest-unknown") is None


async def test_delete_removes_only_that_entry(
    case: StrategyCase, strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    kept = make_session(id=2)
    await strategy.set("digest-gone", make_session(id=1))
    await strategy.set("digest-kept", kept)

    await strategy.delete("digest-gone")
    await strategy.delete("digest-never-set")

    assert await strategy.get("digest-gone") is None
    assert await strategy.get("digest-kept") == (kept.without_token() if case.stores else None)


@stores_only
async def test_set_overwrites_an_entry(strategy: SessionCacheStrategy, make_session: SessionFactory) -> None:
    await strategy.set("digest-1", make_session(id=1))
    newer = make_session(id=1, with_user=True)

    await strategy.set("digest-1", newer)

    assert await strategy.get("digest-1") == newer.without_token()


@stores_only
async def test_clear_removes_earlier_entries_and_keeps_later_ones(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    await strategy.set("digest-1", make_session(id=1))
    await strategy.set("digest-2", make_session(id=2))
    assert await strategy.get("digest-1") is not None

    await strategy.clear()

    assert await strategy.get("digest-1") is None
    assert await strategy.get("digest-2") is None
    later = make_session(id=3)
    await strategy.set("digest-1", later)
    await strategy.set("digest-3", later)
    assert await strategy.get("digest-1") == later.without_token()
    assert await strategy.get("digest-3") == later.without_token()


@stores_only
async def test_a_stale_entry_is_never_returned_through_the_guard(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    guarded = GuardedSessionCache(strategy)
    await guarded.set("digest-stale", make_session(id=1, cache_ttl=-1))
    fresh = make_session(id=2)
    await guarded.set("digest-fresh", fresh)

    stale, fence = await guarded.lookup("digest-stale")
    assert stale is None
    assert fence is not None  # a refill may replace it
    assert (await guarded.lookup("digest-fresh"))[0] == fresh.without_token()


@pytest.mark.strategy_cases(namespaced=True)
async def test_namespaces_are_isolated(
    make_strategy: StrategyFactory, namespace: str, make_session: SessionFactory
) -> None:
    first = make_strategy(namespace=f"{namespace}-a")
    second = make_strategy(namespace=f"{namespace}-b")
    mine, theirs = make_session(id=1), make_session(id=2)

    await first.set("digest-shared", mine)
    assert await second.get("digest-shared") is None

    await second.set("digest-shared", theirs)
    assert await first.get("digest-shared") == mine.without_token()

    await first.clear()
    assert await first.get("digest-shared") is None
    assert await second.get("digest-shared") == theirs.without_token()


@stores_only
async def test_a_refill_fenced_before_a_delete_is_not_written(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    _, fence = await strategy.lookup("digest-1")
    await strategy.delete("digest-1")  # the session was deleted while its refill read the database

    await strategy.set("digest-1", make_session(), fence)

    assert await strategy.get("digest-1") is None


@stores_only
async def test_a_refill_fenced_before_a_clear_is_not_written(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    _, fence = await strategy.lookup("digest-1")
    await strategy.clear()

    await strategy.set("digest-1", make_session(), fence)

    assert await strategy.get("digest-1") is None


@stores_only
async def test_a_refill_fenced_after_a_delete_or_of_another_key_is_written(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    await strategy.delete("digest-1")
    _, fence = await strategy.lookup("digest-1")
    await strategy.delete("digest-2")
    session = make_session()

    await strategy.set("digest-1", session, fence)

    assert await strategy.get("digest-1") == session.without_token()


@stores_only
async def test_delete_many_forgets_every_key_and_voids_their_fences(
    strategy: SessionCacheStrategy, make_session: SessionFactory
) -> None:
    keys = [f"digest-{n}" for n in range(1200)]
    for key in keys[:3]:
        await strategy.set(key, make_session())
    _, fence = await strategy.lookup(keys[-1])

    await strategy.delete_many(keys)

    assert [await strategy.get(key) for key in keys[:3]] == [None] * 3
    await strategy.set(keys[-1], make_session(), fence)
    assert await strategy.get(keys[-1]) is None
