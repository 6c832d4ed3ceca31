"""SessionService: set/unset the active order, set the active channel, and delete sessions."""

from __future__ import annotations

import pytest

from models import Session
from server.services.errors import ForbiddenError
from tests.services.support import Kit, make_order, make_user


async def test_set_active_order_updates_database_cache_and_result(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order = await make_order("ORDER1")

    updated = await kit.sessions.set_active_order(session, order)

    assert updated.active_order_id == order.id
    assert updated.token == session.token
    assert (await Session.get(id=session.id)).active_order_id == order.id  # type: ignore[attr-defined]
    assert kit.cache.peek(session.token) == updated.without_token()
    assert await kit.sessions.get_session_from_token(session.token) == updated


async def test_unset_active_order_updates_database_cache_and_result(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    session = await kit.sessions.set_active_order(session, await make_order("ORDER1"))

    updated = await kit.sessions.unset_active_order(session)

    assert updated.active_order_id is None
    assert (await Session.get(id=session.id)).active_order_id is None  # type: ignore[attr-defined]
    assert kit.cache.peek(session.token) == updated.without_token()


async def test_set_active_channel_updates_database_cache_and_result(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    channel = await kit.channels.create("eu")

    updated = await kit.sessions.set_active_channel(session, channel)

    assert updated.active_channel_id == channel.id
    assert (await Session.get(id=session.id)).active_channel_id == channel.id  # type: ignore[attr-defined]
    assert kit.cache.peek(session.token) == updated.without_token()


async def test_set_active_order_on_a_deleted_session_is_forbidden(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await kit.sessions.delete_session(session)

    with pytest.raises(ForbiddenError):
        await kit.sessions.set_active_order(session, await make_order("ORDER1"))


async def test_unset_active_order_on_a_deleted_session_is_forbidden(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await kit.sessions.delete_session(session)

    with pytest.raises(ForbiddenError):
        await kit.sessions.unset_active_order(session)


async def test_set_active_channel_on_a_deleted_session_is_forbidden(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await kit.sessions.delete_session(session)

    with pytest.raises(ForbiddenError):
        await kit.sessions.set_active_channel(session, await kit.default_channel())
    assert kit.cache.peek(session.token) is None


async def test_delete_session_removes_the_row_and_the_cached_copy(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    other = await kit.sessions.create_anonymous_session()

    deleted = await kit.sessions.delete_session(session)

    assert deleted is True
    assert await Session.filter(id=session.id).exists() is False
    assert kit.cache.peek(session.token) is None
    assert await kit.sessions.get_session_from_token(session.token) is None
    assert await kit.sessions.get_session_from_token(other.token) == other


async def test_delete_session_twice_reports_false(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await kit.sessions.delete_session(session)

    assert await kit.sessions.delete_session(session) is False


async def test_delete_sessions_by_user_ends_every_session_of_that_user_at_once(kit: Kit) -> None:
    # given two cached sessions of alice and one of bob
    alice, bob = await make_user("alice"), await make_user("bob")
    first, second = await kit.login(alice), await kit.login(alice)
    bobs = await kit.login(bob)
    assert await kit.sessions.get_session_from_token(first.token) == first

    # when alice's sessions are deleted
    count = await kit.sessions.delete_sessions_by_user(alice.id)

    # then both are gone from the database and stop working at once; bob's still works
    assert count == 2
    assert await Session.filter(user_id=alice.id).count() == 0
    assert await kit.sessions.get_session_from_token(first.token) is None
    assert await kit.sessions.get_session_from_token(second.token) is None
    assert await kit.sessions.get_session_from_token(bobs.token) == bobs


async def test_delete_sessions_by_user_without_sessions_returns_zero(kit: Kit) -> None:
    user = await make_user("nobody")

    assert await kit.sessions.delete_sessions_by_user(user.id) == 0


async def test_delete_sessions_by_active_order_id_ends_the_holders_at_once(kit: Kit) -> None:
    # given two cached sessions holding one order and one holding another
    order, other_order = await make_order("ORDER1"), await make_order("ORDER2")
    first = await kit.sessions.set_active_order(await kit.sessions.create_anonymous_session(), order)
    second = await kit.sessions.set_active_order(await kit.sessions.create_anonymous_session(), order)
    bystander = await kit.sessions.set_active_order(await kit.sessions.create_anonymous_session(), other_order)

    # when the holders of the first order are deleted
    count = await kit.sessions.delete_sessions_by_active_order_id(order.id)

    # then exactly those two are gone and stop working
    assert count == 2
    assert await Session.filter(active_order_id=order.id).count() == 0
    assert await kit.sessions.get_session_from_token(first.token) is None
    assert await kit.sessions.get_session_from_token(second.token) is None
    assert await kit.sessions.get_session_from_token(bystander.token) == bystander
