"""OrderService: the session's active order, its lines, and which orders a session may hold."""

from __future__ import annotations

import asyncio

import pytest

from models import Order, OrderLine, Session
from server.services.errors import EntityNotFoundError, ForbiddenError, UserInputError
from server.services.order import MAX_LINE_QUANTITY, MAX_VARIANT_ID_LENGTH
from tests.services.support import Kit, make_order, make_user


async def _lines(order_id: int) -> dict[str, int]:
    return dict(await OrderLine.filter(order_id=order_id).values_list("product_variant_id", "quantity"))


async def test_first_item_creates_a_guest_order_made_by_the_session(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    order, updated = await kit.orders.add_item_to_order(session, "variant-1", 2)

    assert order.user_id is None  # type: ignore[attr-defined]
    assert order.created_by_session_id == session.id
    assert order.active is True
    assert updated.active_order_id == order.id
    assert (await Session.get(id=session.id)).active_order_id == order.id  # type: ignore[attr-defined]
    assert kit.cache.peek(session.token) == updated.without_token()
    assert await _lines(order.id) == {"variant-1": 2}


async def test_adding_the_same_variant_adds_to_its_line(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order, session = await kit.orders.add_item_to_order(session, "variant-1", 2)

    again, _ = await kit.orders.add_item_to_order(session, "variant-1", 3)

    assert again.id == order.id
    assert await _lines(order.id) == {"variant-1": 5}
    assert await Order.all().count() == 1


async def test_another_variant_gets_its_own_line(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order, session = await kit.orders.add_item_to_order(session, "variant-1", 1)

    await kit.orders.add_item_to_order(session, "variant-2", 4)

    assert await _lines(order.id) == {"variant-1": 1, "variant-2": 4}


async def test_authenticated_session_adds_to_the_users_order(kit: Kit) -> None:
    user = await make_user("alice")
    session = await kit.login(user)

    order, updated = await kit.orders.add_item_to_order(session, "variant-1", 1)

    assert order.user_id == user.id  # type: ignore[attr-defined]
    assert order.created_by_session_id is None
    assert updated.active_order_id == order.id


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1])
async def test_quantity_out_of_range_is_rejected(kit: Kit, quantity: int) -> None:
    session = await kit.sessions.create_anonymous_session()

    with pytest.raises(UserInputError):
        await kit.orders.add_item_to_order(session, "variant-1", quantity)
    assert await Order.all().count() == 0


async def test_line_total_over_the_maximum_is_rejected_and_the_line_kept(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order, session = await kit.orders.add_item_to_order(session, "variant-1", MAX_LINE_QUANTITY)

    with pytest.raises(UserInputError):
        await kit.orders.add_item_to_order(session, "variant-1", 1)
    assert await _lines(order.id) == {"variant-1": MAX_LINE_QUANTITY}


@pytest.mark.parametrize("variant_id", ["", "v" * (MAX_VARIANT_ID_LENGTH + 1)])
async def test_bad_variant_id_is_rejected(kit: Kit, variant_id: str) -> None:
    session = await kit.sessions.create_anonymous_session()

    with pytest.raises(UserInputError):
        await kit.orders.add_item_to_order(session, variant_id, 1)
    assert await Order.all().count() == 0


async def test_adding_to_a_deleted_session_is_forbidden(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await kit.sessions.delete_session(session)

    with pytest.raises(ForbiddenError):
        await kit.orders.add_item_to_order(session, "variant-1", 1)


async def test_concurrent_first_adds_of_one_session_make_one_cart(kit: Kit) -> None:
    # given a new guest session with no cart yet
    session = await kit.sessions.create_anonymous_session()

    # when two items are added to it at the same time
    await asyncio.gather(
        kit.orders.add_item_to_order(session, "variant-1", 1),
        kit.orders.add_item_to_order(session, "variant-2", 2),
    )

    # then there is one cart, holding both lines, and it is the session's active order
    orders = await Order.all()
    assert len(orders) == 1
    assert await _lines(orders[0].id) == {"variant-1": 1, "variant-2": 2}
    assert (await Session.get(id=session.id)).active_order_id == orders[0].id  # type: ignore[attr-defined]


async def test_user_may_make_their_own_order_active(kit: Kit) -> None:
    user = await make_user("alice")
    session = await kit.login(user)
    order = await make_order("MINE", user=user)

    updated = await kit.orders.set_active_order(session, order.id)

    assert updated.active_order_id == order.id


async def test_guest_order_created_by_the_session_may_be_made_active(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order = await make_order("GUEST", created_by_session_id=session.id)

    updated = await kit.orders.set_active_order(session, order.id)

    assert updated.active_order_id == order.id
    assert (await Session.get(id=session.id)).active_order_id == order.id  # type: ignore[attr-defined]


async def test_guest_order_the_session_holds_may_be_made_active_again(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order = await make_order("HELD")
    session = await kit.sessions.set_active_order(session, order)

    updated = await kit.orders.set_active_order(session, order.id)

    assert updated.active_order_id == order.id


async def test_another_users_order_is_forbidden(kit: Kit) -> None:
    session = await kit.login(await make_user("alice"))
    order = await make_order("BOBS", user=await make_user("bob"))

    with pytest.raises(ForbiddenError):
        await kit.orders.set_active_order(session, order.id)
    assert (await Session.get(id=session.id)).active_order_id is None  # type: ignore[attr-defined]


async def test_a_users_order_is_forbidden_to_a_guest(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order = await make_order("ALICES", user=await make_user("alice"))

    with pytest.raises(ForbiddenError):
        await kit.orders.set_active_order(session, order.id)


async def test_another_sessions_guest_order_is_forbidden(kit: Kit) -> None:
    owner = await kit.sessions.create_anonymous_session()
    stranger = await kit.sessions.create_anonymous_session()
    order, _ = await kit.orders.add_item_to_order(owner, "variant-1", 1)

    with pytest.raises(ForbiddenError):
        await kit.orders.set_active_order(stranger, order.id)
    assert (await Session.get(id=stranger.id)).active_order_id is None  # type: ignore[attr-defined]


async def test_unknown_order_id_is_not_found(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    with pytest.raises(EntityNotFoundError):
        await kit.orders.set_active_order(session, 999_999)


async def test_inactive_order_cannot_be_made_active(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    order = await make_order("DONE", created_by_session_id=session.id)
    await Order.filter(id=order.id).update(active=False)

    with pytest.raises(UserInputError):
        await kit.orders.set_active_order(session, order.id)
