"""SessionService: sliding expiry, the cap on a cached copy's lifetime, and last_active_at."""

from __future__ import annotations

from datetime import timedelta

from models import Session
from tests.services.support import Kit, KitFactory, QueryLog

DAY = 86_400.0


async def test_no_write_while_more_than_half_the_duration_is_left(make_kit: KitFactory, queries: QueryLog) -> None:
    # given a 100 s session, re-read from the database 49 s later (51 s left)
    kit = make_kit(session_duration=100, session_cache_ttl=10)
    session = await kit.sessions.create_anonymous_session()
    created_expires = session.expires
    kit.clock.advance(49)
    queries.clear()

    # when it is looked up
    found = await kit.sessions.get_session_from_token(session.token)

    # then its expiry is left alone, in the database too, and nothing is written
    assert found is not None
    assert found.expires == created_expires
    assert (await Session.get(id=session.id)).expires == created_expires
    assert queries.writes() == []


async def test_expiry_slides_to_now_plus_duration_when_less_than_half_is_left(make_kit: KitFactory) -> None:
    kit = make_kit(session_duration=100, session_cache_ttl=10)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(51)

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert found.expires == kit.clock.at(100)
    assert (await Session.get(id=session.id)).expires == kit.clock.at(100)
    assert kit.cache.peek(session.token) == found.without_token()


async def test_cached_copy_expires_when_extension_becomes_due_despite_a_long_ttl(make_kit: KitFactory) -> None:
    kit = make_kit(session_duration=100, session_cache_ttl=1000)

    session = await kit.sessions.create_anonymous_session()

    assert session.cache_expiry == kit.clock() + 50
    assert kit.cache.peek(session.token) == session.without_token()


async def test_cached_copy_is_reread_once_extension_is_due(make_kit: KitFactory, queries: QueryLog) -> None:
    kit = make_kit(session_duration=100, session_cache_ttl=1000)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(50)
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert found.expires == kit.clock.at(100)
    assert len(queries.writes()) == 1


async def test_active_session_never_lapses_with_a_ttl_longer_than_the_duration(make_kit: KitFactory) -> None:
    # given a 100 s session and a cache TTL of 1000 s
    kit = make_kit(session_duration=100, session_cache_ttl=1000)
    session = await kit.sessions.create_anonymous_session()
    start = kit.clock()

    # when it is used every 10 simulated seconds for 1000 simulated seconds
    misses: list[float] = []
    while kit.clock() < start + 1000:
        kit.clock.advance(10)
        found = await kit.sessions.get_session_from_token(session.token)
        # then every lookup finds it
        assert found is not None, f"lapsed at t+{kit.clock() - start:.0f}s"
        if kit.cache.ops()[-1] == "set":
            misses.append(kit.clock() - start)

    # and it is re-read (and extended) about once per half-lifetime, not on every lookup
    assert misses == [50.0 * n for n in range(1, 21)]
    assert (await Session.get(id=session.id)).expires == kit.clock.at(100)


async def test_last_active_at_is_not_rewritten_within_a_day(kit: Kit) -> None:
    # given a one-year session (the default) with a 300 s cache TTL, re-read 23h59 later
    session = await kit.sessions.create_anonymous_session()
    created_at = kit.clock.at()
    kit.clock.advance(DAY - 60)

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert kit.cache.ops()[-1] == "set"  # the lookup was a database read
    assert (await Session.get(id=session.id)).last_active_at == created_at


async def test_last_active_at_is_refreshed_after_a_day(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(DAY + 60)

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert (await Session.get(id=session.id)).last_active_at == kit.clock.at()


async def test_cached_copy_expires_when_last_active_at_is_due(make_kit: KitFactory) -> None:
    kit = make_kit(session_cache_ttl=30 * DAY)

    session = await kit.sessions.create_anonymous_session()

    assert session.cache_expiry == kit.clock() + DAY


async def test_cached_copy_lasts_the_ttl_when_nothing_is_due_earlier(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    assert session.cache_expiry == kit.clock() + kit.settings.session_cache_ttl
    assert session.expires - kit.clock.at() == timedelta(seconds=kit.settings.session_duration)
