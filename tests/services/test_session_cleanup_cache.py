"""The clean job and the cache: a session it deletes after its expiry is forgotten only while a refill
could still write a copy of it back (RECENTLY_EXPIRED); otherwise its copy is left to the guard,
which never returns one past its `expires`. Either way, a token of a cleaned session resolves to nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

import server.services.session_refill as session_refill_module
import server.services.stored_session as stored_session_module
from models import Session
from server.cache import (
    CoherentSessionCache,
    GuardedSessionCache,
    InMemorySessionCacheStrategy,
    build_invalidation_channel,
    build_session_cache,
    listening,
)
from server.cache.base import MAX_REFILL_SECONDS, Fence
from server.services import SessionService
from server.services.session_deletes import RECENTLY_EXPIRED
from server.services.stored_session import StoredSession
from server.services.tokens import token_digest
from server.settings import Settings
from tests.conftest import Backend
from tests.services.support import FakeClock, Kit, make_user

DAY = 86_400.0
#: Past every session's expiry (SESSION_DURATION is a year) by more than RECENTLY_EXPIRED.
LONG_AFTER_EXPIRY = 366 * DAY + RECENTLY_EXPIRED.total_seconds()


def deletes(kit: Kit) -> list[str]:
    return [key for op, key in kit.cache.calls if op == "delete"]


async def test_sessions_long_expired_are_not_forgotten_but_resolve_to_nothing(kit: Kit) -> None:
    # given a guest's and a user's session, both cached, and the clock moved past their expiry by more
    # than RECENTLY_EXPIRED
    guest = await kit.sessions.create_anonymous_session()
    user = await kit.login(await make_user("alice"))
    for session in (guest, user):
        assert await kit.sessions.get_session_from_token(session.token) is not None
        assert kit.cache.peek(session.token) is not None
    kit.clock.advance(LONG_AFTER_EXPIRY)
    kit.cache.calls.clear()

    # when the clean job runs
    removed = await kit.sessions.clean_expired_sessions()

    # then both rows are gone, their copies were not forgotten (no cache call at all), and yet
    # neither token resolves: the guard refuses a copy past its expiry, and the database has no row
    assert removed == 2
    assert await Session.all().count() == 0
    assert kit.cache.calls == []
    assert kit.cache.peek(guest.token) is not None
    for session in (guest, user):
        assert await kit.sessions.get_session_from_token(session.token) is None


async def test_sessions_recently_expired_and_idle_ones_are_forgotten(kit: Kit) -> None:
    # given a guest session that expired a second ago, one idle for eight days (unexpired), and a live one
    duration = kit.settings.session_duration
    expiring = await kit.sessions.create_anonymous_session()
    kit.clock.advance(duration - 10 * DAY)
    idle = await kit.sessions.create_anonymous_session()
    await Session.filter(id=idle.id).update(last_active_at=kit.clock.at(-8 * DAY))
    kit.clock.advance(10 * DAY + 1)
    live = await kit.sessions.create_anonymous_session()
    kit.cache.calls.clear()

    # when the clean job runs
    assert await kit.sessions.clean_expired_sessions() == 2

    # then both copies were forgotten, and neither token resolves; the live one does
    assert sorted(deletes(kit)) == sorted([expiring.cache_key, idle.cache_key])
    assert kit.cache.peek(expiring.token) is None and kit.cache.peek(idle.token) is None
    assert await kit.sessions.get_session_from_token(expiring.token) is None
    assert await kit.sessions.get_session_from_token(idle.token) is None
    assert await kit.sessions.get_session_from_token(live.token) is not None


async def test_a_batch_takes_long_expired_then_recently_expired_then_idle_sessions(kit: Kit) -> None:
    # given two sessions long expired, two that expired a second ago and two idle ones
    old = [await kit.sessions.create_anonymous_session() for _ in range(2)]
    kit.clock.advance(2 * RECENTLY_EXPIRED.total_seconds())
    recent = [await kit.sessions.create_anonymous_session() for _ in range(2)]
    kit.clock.advance(kit.settings.session_duration + 1)
    idle = [await kit.sessions.create_anonymous_session() for _ in range(2)]
    for session in idle:
        await Session.filter(id=session.id).update(last_active_at=kit.clock.at(-8 * DAY))
    kit.cache.calls.clear()

    # when batches of three are cleaned
    assert await kit.sessions.clean_expired_sessions(batch_size=3) == 3
    first, left = deletes(kit), {session.id for session in await Session.all()}
    assert await kit.sessions.clean_expired_sessions(batch_size=3) == 3
    assert await kit.sessions.clean_expired_sessions(batch_size=3) == 0

    # then the first took both old ones and one recent one, forgetting only that one; the second the rest
    (taken,) = [session for session in recent if session.cache_key in first]
    assert first == [taken.cache_key]
    assert left == {session.id for session in recent + idle if session is not taken}
    assert sorted(deletes(kit)) == sorted(session.cache_key for session in recent + idle)
    assert {session.cache_key for session in old}.isdisjoint(deletes(kit))
    assert await Session.all().count() == 0


async def test_a_refill_paused_across_the_clean_of_its_expiring_session_does_not_bring_it_back(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a session a second before its expiry, not cached: its next lookup reads it and slides it
    session = await kit.sessions.create_anonymous_session()
    await Session.filter(id=session.id).update(last_active_at=kit.clock.at())
    kit.clock.advance(kit.settings.session_duration - 1)
    kit.cache.entries.pop(session.cache_key)
    read, resume = asyncio.Event(), asyncio.Event()

    async def read_then_pause(key: str) -> StoredSession | None:
        stored = await stored_session_module.load_stored_session(key)
        read.set()
        await resume.wait()
        return stored

    monkeypatch.setattr(session_refill_module, "load_stored_session", read_then_pause)
    # when a lookup reads the session (still valid), then the session expires and the clean deletes it,
    # and only then the lookup slides it (a write that finds no row) and writes its copy back
    lookup = asyncio.create_task(kit.sessions.get_session_from_token(session.token))
    await asyncio.wait_for(read.wait(), 10)
    kit.clock.advance(2)
    assert await kit.sessions.clean_expired_sessions() == 1
    resume.set()
    await asyncio.wait_for(lookup, 10)

    # then the copy the lookup slid past the expiry was refused: the clean's forget voided its fence
    assert session.cache_key in deletes(kit)
    assert kit.cache.peek(session.token) is None
    monkeypatch.undo()
    assert await kit.sessions.get_session_from_token(session.token) is None


async def test_a_refill_later_than_max_refill_seconds_is_not_written_back_whatever_the_strategy(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    strategy = InMemorySessionCacheStrategy(10)
    guard = GuardedSessionCache(strategy, kit.clock)
    _, fence = await guard.lookup(session.cache_key)
    assert fence is not None

    late = Fence(fence.version, time.monotonic() - MAX_REFILL_SECONDS)
    await guard.set(session.cache_key, session.without_token(), late)
    assert len(strategy) == 0
    await guard.set(session.cache_key, session.without_token(), fence)
    assert len(strategy) == 1


# --- through the first tier: the in-process LRU (SQLite), or the coherent one in front of Redis -----


@pytest_asyncio.fixture
async def tiered(
    db: TortoiseContext, backend: Backend, make_settings: Any
) -> AsyncIterator[tuple[SessionService, FakeClock]]:
    """A SessionService on a fake clock whose cache has the first tier the server uses on the backend."""
    settings: Settings = make_settings(session_cache="memory") if not backend.is_postgres else make_settings()
    clock = FakeClock()
    channel = build_invalidation_channel(settings, backend.namespace)
    cache = build_session_cache(settings, backend.namespace, clock=clock, channel=channel)
    try:
        async with listening(cache.strategy):
            if backend.is_postgres:
                assert isinstance(cache.strategy, CoherentSessionCache) and cache.strategy.trusted
            yield SessionService(cache, settings, clock), clock
    finally:
        await cache.close()


def first_tier(sessions: SessionService) -> InMemorySessionCacheStrategy:
    strategy = sessions._cache.strategy
    if isinstance(strategy, CoherentSessionCache):
        return strategy.local
    assert isinstance(strategy, InMemorySessionCacheStrategy)
    return strategy


async def test_a_cleaned_session_cached_in_the_first_tier_resolves_to_nothing(
    tiered: tuple[SessionService, FakeClock],
) -> None:
    # given a session cached in the first tier, and one created later that stays live
    sessions, clock = tiered
    cleaned = await sessions.create_anonymous_session()
    assert await sessions.get_session_from_token(cleaned.token) is not None
    clock.advance(LONG_AFTER_EXPIRY - DAY)
    live = await sessions.create_anonymous_session()
    clock.advance(DAY)
    assert (await first_tier(sessions).lookup(token_digest(cleaned.token)))[0] is not None

    # when the clean job removes the expired one
    assert await sessions.clean_expired_sessions() == 1

    # then its copy is still in the first tier, but its token resolves to nothing; the live one resolves
    assert (await first_tier(sessions).lookup(token_digest(cleaned.token)))[0] is not None
    assert await sessions.get_session_from_token(cleaned.token) is None
    assert await sessions.get_session_from_token(live.token) is not None
