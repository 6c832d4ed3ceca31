"""The in-process LRU: bounded, evicting the least recently used entry (unlike Vendure's)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from models.enums import Permission
from server.cache import InMemorySessionCacheStrategy, NoopSessionCacheStrategy, build_cache_strategy
from server.cached_session import CachedSession, CachedSessionUser, UserChannelPermissions
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


def _session_of(user_id: int, session_id: int, channel_token: str = "default-channel") -> CachedSession:
    """A session of user `user_id` holding a role on one channel, every part built afresh (as a database read does)."""
    permissions = UserChannelPermissions(
        id=1, token="".join(channel_token), code="__default_channel__", permissions=(Permission.ReadOrder,)
    )
    user = CachedSessionUser(
        id=user_id, identifier=f"user-{user_id}@example.com", verified=True, channel_permissions=(permissions,)
    )
    return CachedSession(
        cache_expiry=time.time() + 300,
        id=session_id,
        token=f"raw-token-{session_id}",
        expires=datetime(2031, 5, 17, tzinfo=UTC),
        authentication_strategy="".join(["nat", "ive"]),
        user=user,
        cache_key=f"digest-{session_id}",
    )


async def test_sessions_hold_one_copy_of_what_they_share_and_read_back_equal() -> None:
    cache = InMemorySessionCacheStrategy(max_size=10)
    sessions = {number: _session_of(user_id, number) for number, user_id in ((1, 7), (2, 7), (3, 8))}
    for number, session in sessions.items():
        await cache.set(f"digest-{number}", session)

    cached = {number: await cache.get(f"digest-{number}") for number in sessions}

    assert cached == {number: session.without_token() for number, session in sessions.items()}
    first, second, other = (session for session in cached.values() if session is not None)
    assert first.user is second.user  # one user, two sessions
    assert first.user is not other.user  # another user...
    assert first.user is not None and other.user is not None
    assert first.user.channel_permissions is other.user.channel_permissions  # ...with the same role
    assert first.authentication_strategy is other.authentication_strategy


async def test_parts_that_differ_are_never_shared() -> None:
    cache = InMemorySessionCacheStrategy(max_size=10)
    await cache.set("digest-1", _session_of(7, 1))
    await cache.set("digest-2", _session_of(8, 2, channel_token="eu-channel"))

    first, second = await cache.get("digest-1"), await cache.get("digest-2")

    assert first is not None and first.user is not None and second is not None and second.user is not None
    assert [entry.token for entry in first.user.channel_permissions] == ["default-channel"]
    assert [entry.token for entry in second.user.channel_permissions] == ["eu-channel"]


async def test_sharing_stays_bounded_and_correct_past_its_limit() -> None:
    cache = InMemorySessionCacheStrategy(max_size=2)
    sessions = [_session_of(100 + number, number) for number in range(20)] + [_session_of(119, 20)]
    for number, session in enumerate(sessions):  # each a user of its own: the parts outgrow the bound many times
        await cache.set(f"digest-{number}", session)

    assert len(cache) == 2
    assert await cache.get("digest-19") == sessions[19].without_token()
    assert await cache.get("digest-20") == sessions[20].without_token()
