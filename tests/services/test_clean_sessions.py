"""SessionService.clean_expired_sessions: expired and idle anonymous sessions, in bounded batches."""

from __future__ import annotations

from models import Session
from server.cached_session import CachedSession
from tests.services.support import Kit, make_order, make_user

DAY = 86_400.0


async def _expire(kit: Kit, session: CachedSession) -> None:
    await Session.filter(id=session.id).update(expires=kit.clock.at(-1))


async def _idle_for(kit: Kit, session: CachedSession, seconds: float) -> None:
    await Session.filter(id=session.id).update(last_active_at=kit.clock.at(-seconds))


async def _ids() -> set[int]:
    return {session.id for session in await Session.all()}


async def test_expired_sessions_are_removed_and_live_authenticated_ones_kept(kit: Kit) -> None:
    # given an expired anonymous session, an expired and a live authenticated session
    user = await make_user("alice")
    expired_anonymous = await kit.sessions.create_anonymous_session()
    expired_user, live_user = await kit.login(user), await kit.login(user)
    await _expire(kit, expired_anonymous)
    await _expire(kit, expired_user)

    # when sessions are cleaned
    removed = await kit.sessions.clean_expired_sessions()

    # then the expired ones are gone
    assert removed == 2
    assert await _ids() == {live_user.id}


async def test_anonymous_sessions_idle_over_seven_days_without_order_are_removed(kit: Kit) -> None:
    idle = await kit.sessions.create_anonymous_session()
    recent = await kit.sessions.create_anonymous_session()
    await _idle_for(kit, idle, 7 * DAY + 1)
    await _idle_for(kit, recent, 7 * DAY - 1)

    removed = await kit.sessions.clean_expired_sessions()

    assert removed == 1
    assert await _ids() == {recent.id}


async def test_idle_anonymous_session_holding_an_order_is_kept(kit: Kit) -> None:
    holder = await kit.sessions.create_anonymous_session()
    holder = await kit.sessions.set_active_order(holder, await make_order("CART1"))
    await _idle_for(kit, holder, 30 * DAY)

    removed = await kit.sessions.clean_expired_sessions()

    assert removed == 0
    assert await _ids() == {holder.id}


async def test_idle_authenticated_session_that_has_not_expired_is_kept(kit: Kit) -> None:
    session = await kit.login(await make_user("alice"))
    await _idle_for(kit, session, 30 * DAY)

    assert await kit.sessions.clean_expired_sessions() == 0
    assert await _ids() == {session.id}


async def test_sessions_idle_by_the_clock_alone_are_removed(kit: Kit) -> None:
    # given a guest session nobody used for eight simulated days, and a user's session as old
    idle = await kit.sessions.create_anonymous_session()
    user_session = await kit.login(await make_user("alice"))
    kit.clock.advance(8 * DAY)

    removed = await kit.sessions.clean_expired_sessions()

    assert removed == 1
    assert await _ids() == {user_session.id}
    assert await kit.sessions.get_session_from_token(idle.token) is None


async def test_at_most_batch_size_sessions_are_removed_per_call(kit: Kit) -> None:
    sessions = [await kit.sessions.create_anonymous_session() for _ in range(5)]
    for session in sessions:
        await _expire(kit, session)

    assert await kit.sessions.clean_expired_sessions(batch_size=2) == 2
    assert await Session.all().count() == 3
    assert await kit.sessions.clean_expired_sessions(batch_size=2) == 2
    assert await kit.sessions.clean_expired_sessions(batch_size=2) == 1
    assert await kit.sessions.clean_expired_sessions(batch_size=2) == 0


async def test_batch_is_filled_with_idle_sessions_after_expired_ones(kit: Kit) -> None:
    expired = await kit.sessions.create_anonymous_session()
    user_session = await kit.login(await make_user("alice"))
    idle = [await kit.sessions.create_anonymous_session() for _ in range(2)]
    await _expire(kit, user_session)
    for session in idle:
        await _idle_for(kit, session, 8 * DAY)
    await _expire(kit, expired)

    assert await kit.sessions.clean_expired_sessions(batch_size=2) == 2
    assert await Session.all().count() == 2


async def test_a_session_both_expired_and_idle_does_not_shorten_the_batch(kit: Kit) -> None:
    # given a guest session that is expired and idle, and two that are only idle
    sessions = [await kit.sessions.create_anonymous_session() for _ in range(3)]
    for offset, session in enumerate(sessions):
        await _idle_for(kit, session, 30 * DAY - offset)
    await _expire(kit, sessions[0])

    # when a batch of two is cleaned
    removed = await kit.sessions.clean_expired_sessions(batch_size=2)

    # then it removes two sessions (a short batch tells the clean loop the backlog is drained)
    assert removed == 2
    assert await Session.all().count() == 1


async def test_cleaning_until_a_short_batch_drains_the_backlog(kit: Kit) -> None:
    # given seven idle guest sessions, the first four also expired, the fourth the longest idle
    sessions = [await kit.sessions.create_anonymous_session() for _ in range(7)]
    for index, session in enumerate(sessions):
        await _idle_for(kit, session, 20 * DAY if index == 3 else 10 * DAY - index)
    for session in sessions[:4]:
        await _expire(kit, session)

    # when batches of three are cleaned until one comes back short, as the CLI does
    total, removed = 0, 3
    while removed == 3:
        removed = await kit.sessions.clean_expired_sessions(batch_size=3)
        total += removed

    # then nothing is left
    assert total == 7
    assert await Session.all().count() == 0


async def test_removed_sessions_are_gone_from_the_cache(kit: Kit) -> None:
    # given cached sessions: one expired, one idle, one live
    expired, idle, live = [await kit.sessions.create_anonymous_session() for _ in range(3)]
    await _expire(kit, expired)
    await _idle_for(kit, idle, 8 * DAY)

    await kit.sessions.clean_expired_sessions()

    assert kit.cache.peek(expired.token) is None
    assert kit.cache.peek(idle.token) is None
    assert kit.cache.peek(live.token) == live.without_token()


async def test_cleaning_with_nothing_to_remove_returns_zero_without_cache_calls(kit: Kit) -> None:
    await kit.sessions.create_anonymous_session()
    kit.cache.calls.clear()

    assert await kit.sessions.clean_expired_sessions() == 0
    assert kit.cache.calls == []
