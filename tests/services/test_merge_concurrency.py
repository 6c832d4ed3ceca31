"""Concurrent logins sharing one guest cart merge it exactly once.

Like every service test this runs on both backends (tests/conftest.py): SQLite serialises
transactions on its one connection; PostgreSQL exercises the row locks for real.
"""

from __future__ import annotations

import asyncio

import pytest

from models import Order, OrderLine, Session
from server.cached_session import CachedSession
from tests.services.support import Kit, make_order, make_user


async def _lines() -> list[tuple[int, str, int]]:
    return sorted(await OrderLine.all().values_list("order_id", "product_variant_id", "quantity"))


async def _guest_with_cart(kit: Kit, items: dict[str, int]) -> tuple[CachedSession, int]:
    session = await kit.sessions.create_anonymous_session()
    order_id = 0
    for variant, quantity in items.items():
        order, session = await kit.orders.add_item_to_order(session, variant, quantity)
        order_id = order.id
    return session, order_id


@pytest.mark.parametrize("logins", [2, 5])
async def test_concurrent_logins_merge_one_guest_cart_into_the_users_order_once(kit: Kit, logins: int) -> None:
    # given alice's cart and a guest cart overlapping on "b"
    alice = await make_user("alice")
    user_order = await make_order("ALICE-CART", user=alice)
    await OrderLine.create(order=user_order, product_variant_id="a", quantity=1)
    await OrderLine.create(order=user_order, product_variant_id="b", quantity=5)
    guest, guest_order = await _guest_with_cart(kit, {"b": 2, "c": 3})

    # when the guest logs in as alice several times at once
    sessions = await asyncio.gather(*(kit.login(alice, guest) for _ in range(logins)))

    # then alice's order holds each line once, the guest cart is gone, every session holds her order
    assert await _lines() == [(user_order.id, "a", 1), (user_order.id, "b", 2), (user_order.id, "c", 3)]
    assert [order.id for order in await Order.all()] == [user_order.id]
    assert await Order.filter(id=guest_order).exists() is False
    assert [s.active_order_id for s in sessions] == [user_order.id] * logins
    assert await Session.filter(user_id=alice.id, active_order_id=user_order.id).count() == logins
    assert await kit.sessions.get_session_from_token(guest.token) is None


@pytest.mark.parametrize("logins", [2, 5])
async def test_concurrent_logins_hand_the_guest_cart_to_a_user_without_one_once(kit: Kit, logins: int) -> None:
    alice = await make_user("alice")
    guest, guest_order = await _guest_with_cart(kit, {"a": 2, "b": 1})

    sessions = await asyncio.gather(*(kit.login(alice, guest) for _ in range(logins)))

    assert [order.id for order in await Order.filter(user_id=alice.id)] == [guest_order]
    assert await Order.all().count() == 1
    assert await _lines() == [(guest_order, "a", 2), (guest_order, "b", 1)]
    assert [s.active_order_id for s in sessions] == [guest_order] * logins


async def test_concurrent_logins_of_two_users_give_the_guest_cart_to_exactly_one(kit: Kit) -> None:
    # given alice and bob, each with a cart, and one guest cart
    alice, bob = await make_user("alice"), await make_user("bob")
    carts = {alice.id: await make_order("ALICE-CART", user=alice), bob.id: await make_order("BOB-CART", user=bob)}
    for order in carts.values():
        await OrderLine.create(order=order, product_variant_id="own", quantity=1)
    guest, guest_order = await _guest_with_cart(kit, {"g1": 4, "g2": 6})

    # when both log in from the guest's session at once
    await asyncio.gather(kit.login(alice, guest), kit.login(bob, guest))

    # then the guest lines were merged into exactly one of the two carts, once
    lines = await _lines()
    guest_lines = [(order_id, variant, quantity) for order_id, variant, quantity in lines if variant != "own"]
    winner = guest_lines[0][0]
    assert winner in {carts[alice.id].id, carts[bob.id].id}
    assert guest_lines == [(winner, "g1", 4), (winner, "g2", 6)]
    assert len(lines) == 4
    assert await Order.filter(id=guest_order).exists() is False
