"""create_new_authenticated_session: the caller's guest cart is merged into the user's active order."""

from __future__ import annotations

from models import Order, OrderLine, Session, User
from server.cached_session import CachedSession
from server.services.orders_merge import MERGED_SESSION_GRACE
from server.services.session import ENDED_BY_LOGIN
from tests.services.support import Kit, make_order, make_user


async def _lines(order_id: int) -> dict[str, int]:
    return dict(await OrderLine.filter(order_id=order_id).values_list("product_variant_id", "quantity"))


async def _guest_with_cart(kit: Kit, items: dict[str, int]) -> tuple[CachedSession, int]:
    session = await kit.sessions.create_anonymous_session()
    order_id = 0
    for variant, quantity in items.items():
        order, session = await kit.orders.add_item_to_order(session, variant, quantity)
        order_id = order.id
    return session, order_id


async def _user_with_cart(kit: Kit, identifier: str, items: dict[str, int]) -> tuple[User, int]:
    user = await make_user(identifier)
    order = await make_order(f"{identifier.upper()}-CART", user=user)
    for variant, quantity in items.items():
        await OrderLine.create(order=order, product_variant_id=variant, quantity=quantity)
    return user, order.id


async def test_guest_lines_are_added_to_the_users_order_and_guest_quantity_wins(kit: Kit) -> None:
    # given a user's cart and a guest cart sharing variant "b"
    user, user_order = await _user_with_cart(kit, "alice", {"a": 1, "b": 5})
    guest, _ = await _guest_with_cart(kit, {"b": 2, "c": 3})

    # when the guest logs in
    session = await kit.login(user, guest)

    # then the user's order holds every line, with the guest's quantity for "b"
    assert session.active_order_id == user_order
    assert await _lines(user_order) == {"a": 1, "b": 2, "c": 3}


async def test_merged_guest_order_is_deleted(kit: Kit) -> None:
    user, user_order = await _user_with_cart(kit, "alice", {"a": 1})
    guest, guest_order = await _guest_with_cart(kit, {"c": 3})

    await kit.login(user, guest)

    assert await Order.filter(id=guest_order).exists() is False
    assert await OrderLine.filter(order_id=guest_order).count() == 0
    assert [order.id for order in await Order.all()] == [user_order]


async def test_sessions_holding_the_guest_order_are_ended_and_stop_working(kit: Kit) -> None:
    # given the guest's session and a second session holding the same cart, both cached
    user, _ = await _user_with_cart(kit, "alice", {"a": 1})
    guest, guest_order = await _guest_with_cart(kit, {"c": 3})
    other = await kit.sessions.create_anonymous_session()
    other = await kit.sessions.set_active_order(other, await Order.get(id=guest_order))
    assert await kit.sessions.get_session_from_token(guest.token) == guest

    # when the guest logs in
    session = await kit.login(user, guest)

    # then both holders are ended (kept, invalidated, for MERGED_SESSION_GRACE, then cleaned as expired)
    # and their tokens resolve to nothing; the new session works
    ended = await Session.filter(id__in=[guest.id, other.id]).values_list("invalidated", "expires", "active_order_id")
    assert ended == [(True, kit.clock.at(MERGED_SESSION_GRACE.total_seconds()), None)] * 2
    assert await kit.sessions.resolve_token(guest.token) == (ENDED_BY_LOGIN, False)
    assert await kit.sessions.get_session_from_token(guest.token) is None
    assert await kit.sessions.get_session_from_token(other.token) is None
    assert await kit.sessions.get_session_from_token(session.token) == session


async def test_guest_order_becomes_the_users_when_they_have_none(kit: Kit) -> None:
    user = await make_user("alice")
    guest, guest_order = await _guest_with_cart(kit, {"a": 2})

    session = await kit.login(user, guest)

    order = await Order.get(id=guest_order)
    assert order.user_id == user.id  # type: ignore[attr-defined]
    assert order.created_by_session_id is None
    assert session.active_order_id == guest_order
    assert (await Session.get(id=session.id)).active_order_id == guest_order  # type: ignore[attr-defined]
    assert await _lines(guest_order) == {"a": 2}


async def test_login_without_a_guest_cart_keeps_the_users_active_order(kit: Kit) -> None:
    user, user_order = await _user_with_cart(kit, "alice", {"a": 1})
    guest = await kit.sessions.create_anonymous_session()

    session = await kit.login(user, guest)

    assert session.active_order_id == user_order
    assert await _lines(user_order) == {"a": 1}
    assert await kit.sessions.get_session_from_token(guest.token) == guest


async def test_login_without_any_session_has_no_active_order(kit: Kit) -> None:
    session = await kit.login(await make_user("alice"))

    assert session.active_order_id is None


async def test_a_users_order_on_the_callers_session_is_not_a_guest_order(kit: Kit) -> None:
    # given alice's session holding her own order, and another active order of hers
    user = await make_user("alice")
    own_order = await make_order("OLDER", user=user)
    await OrderLine.create(order=own_order, product_variant_id="a", quantity=1)
    first = await kit.sessions.set_active_order(await kit.login(user), own_order)
    newest = await make_order("NEWER", user=user)

    # when she logs in again from that session
    session = await kit.login(user, first)

    # then nothing is merged, deleted or moved
    assert await _lines(own_order.id) == {"a": 1}
    assert await _lines(newest.id) == {}
    assert await Order.filter(user_id=user.id).count() == 2
    assert await kit.sessions.get_session_from_token(first.token) == first
    assert session.active_order_id == newest.id


async def test_another_users_order_on_the_callers_session_is_not_merged(kit: Kit) -> None:
    bob, bobs_order = await _user_with_cart(kit, "bob", {"x": 9})
    bobs_session = await kit.sessions.set_active_order(await kit.login(bob), await Order.get(id=bobs_order))
    alice = await make_user("alice")

    session = await kit.login(alice, bobs_session)

    assert session.active_order_id is None
    assert (await Order.get(id=bobs_order)).user_id == bob.id  # type: ignore[attr-defined]
    assert await _lines(bobs_order) == {"x": 9}
