"""addItemToOrder, activeOrder, setActiveOrder's ownership rules and the guest-cart merge at login."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    ADD_ITEM,
    FORBIDDEN_MESSAGE,
    LOGIN,
    add_item,
    admin_token,
    create_user,
    login_token,
    set_cookies,
)

ACTIVE_ORDER = "query ActiveOrder { activeOrder { id code active userId lines { productVariantId quantity } } }"
ACTIVE_ORDER_ID = "query ActiveOrderId { activeSession { activeOrderId } }"
SET_ACTIVE_ORDER = "mutation SetOrder($id: ID!) { setActiveOrder(orderId: $id) { activeOrderId } }"
UNSET_ACTIVE_ORDER = "mutation Unset { unsetActiveOrder { activeOrderId } }"
SESSION_ID = "query Id($token: String!) { sessionFromToken(token: $token) { id } }"


async def order_of(client: GraphQLClient, token: str, *items: tuple[str, int]) -> dict[str, Any]:
    order: dict[str, Any] = {}
    for variant, quantity in items:
        order = (await client.ok(ADD_ITEM, {"variant": variant, "quantity": quantity}, token=token))["addItemToOrder"]
    return order


def lines(*items: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"productVariantId": variant, "quantity": quantity} for variant, quantity in items]


async def test_add_item_without_a_session_creates_one_with_its_active_order(client: GraphQLClient) -> None:
    result = await add_item(client, "v1", 2)
    assert result.errors is None and result.data is not None
    order = result.data["addItemToOrder"]
    token = result.response.headers["auth-token"]
    assert [cookie["_value"] for cookie in set_cookies(result.response)] == [token]
    assert {**order, "id": None, "code": None} == {
        "id": None, "code": None, "active": True, "userId": None, "lines": lines(("v1", 2))
    }  # fmt: skip
    assert await client.ok(ACTIVE_ORDER_ID, token=token) == {"activeSession": {"activeOrderId": order["id"]}}


async def test_repeated_adds_accumulate(api: GraphQLClient) -> None:
    token = await login_token(api, "superadmin", "superadmin")
    order = await order_of(api, token, ("v1", 2), ("v2", 1), ("v1", 3))
    assert order["lines"] == lines(("v1", 5), ("v2", 1))


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001])
async def test_add_item_rejects_out_of_range_quantities(api: GraphQLClient, quantity: int) -> None:
    result = await add_item(api, "v1", quantity)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_add_item_rejects_a_line_over_the_limit(api: GraphQLClient) -> None:
    token = await login_token(api, "superadmin", "superadmin")
    await order_of(api, token, ("v1", 1_000_000))
    result = await add_item(api, "v1", 1, token=token)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])
    assert (await api.ok(ACTIVE_ORDER, token=token))["activeOrder"]["lines"] == lines(("v1", 1_000_000))


async def test_active_order_is_null_without_a_session(api: GraphQLClient) -> None:
    assert await api.ok(ACTIVE_ORDER) == {"activeOrder": None}


async def test_active_order_is_the_order_items_were_added_to(api: GraphQLClient) -> None:
    token = (await add_item(api, "v1", 1)).response.headers["auth-token"]
    order = await order_of(api, token, ("v2", 4))
    assert await api.ok(ACTIVE_ORDER, token=token) == {"activeOrder": order}


async def test_user_may_set_their_own_order_active(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_user(api, admin, "alice")
    alice = await login_token(api, "alice", "pw-alice")
    order = await order_of(api, alice, ("v1", 1))
    assert await api.ok(UNSET_ACTIVE_ORDER, token=alice) == {"unsetActiveOrder": {"activeOrderId": None}}
    assert await api.ok(ACTIVE_ORDER, token=alice) == {"activeOrder": None}
    data = await api.ok(SET_ACTIVE_ORDER, {"id": order["id"]}, token=alice)
    assert data == {"setActiveOrder": {"activeOrderId": order["id"]}}


@pytest.mark.parametrize("variant", ["", "v" * 65])
async def test_add_item_rejects_a_bad_variant_id(api: GraphQLClient, variant: str) -> None:
    result = await add_item(api, variant, 1)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_guest_session_may_set_the_order_it_created_active(api: GraphQLClient) -> None:
    token = (await add_item(api, "v1", 1)).response.headers["auth-token"]
    order = (await api.ok(ACTIVE_ORDER, token=token))["activeOrder"]
    await api.ok(UNSET_ACTIVE_ORDER, token=token)
    data = await api.ok(SET_ACTIVE_ORDER, {"id": order["id"]}, token=token)
    assert data == {"setActiveOrder": {"activeOrderId": order["id"]}}


async def test_another_guests_order_is_forbidden(api: GraphQLClient) -> None:
    owner = await add_item(api, "v1", 1)
    order_id = owner.data["addItemToOrder"]["id"] if owner.data else None
    intruder = (await add_item(api, "v2", 1)).response.headers["auth-token"]
    result = await api.execute(SET_ACTIVE_ORDER, {"id": order_id}, token=intruder)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])
    assert result.errors is not None and result.errors[0]["message"] == FORBIDDEN_MESSAGE


async def test_another_users_order_is_forbidden(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_user(api, admin, "alice")
    order = await order_of(api, await login_token(api, "alice", "pw-alice"), ("v1", 1))
    result = await api.execute(SET_ACTIVE_ORDER, {"id": order["id"]}, token=admin)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])
    assert result.errors is not None and result.errors[0]["message"] == FORBIDDEN_MESSAGE


async def test_unknown_order_is_not_found(api: GraphQLClient) -> None:
    token = (await add_item(api, "v1", 1)).response.headers["auth-token"]
    result = await api.execute(SET_ACTIVE_ORDER, {"id": "4242"}, token=token)
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])


async def test_login_merges_the_guest_cart_into_the_users_active_order(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "alice")
    user_order = await order_of(api, await login_token(api, "alice", "pw-alice"), ("v1", 1), ("v2", 2))
    guest = (await add_item(api, "v2", 5)).response.headers["auth-token"]
    await order_of(api, guest, ("v3", 1))
    session = (await api.ok(LOGIN, {"username": "alice", "password": "pw-alice"}, token=guest))["login"]
    assert session["activeOrderId"] == user_order["id"]
    merged = (await api.ok(ACTIVE_ORDER, token=session["token"]))["activeOrder"]
    assert merged == {**user_order, "lines": lines(("v1", 1), ("v2", 5), ("v3", 1))}


async def test_guest_quantity_wins_even_when_smaller(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "alice")
    user_order = await order_of(api, await login_token(api, "alice", "pw-alice"), ("v1", 4))
    guest = (await add_item(api, "v1", 1)).response.headers["auth-token"]
    session = (await api.ok(LOGIN, {"username": "alice", "password": "pw-alice"}, token=guest))["login"]
    merged = (await api.ok(ACTIVE_ORDER, token=session["token"]))["activeOrder"]
    assert merged == {**user_order, "lines": lines(("v1", 1))}


async def test_login_ends_the_guest_session(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "alice")
    await order_of(api, await login_token(api, "alice", "pw-alice"), ("v1", 1))
    guest = (await add_item(api, "v2", 5)).response.headers["auth-token"]
    assert (await api.ok(SESSION_ID, {"token": guest}))["sessionFromToken"] is not None
    await api.ok(LOGIN, {"username": "alice", "password": "pw-alice"}, token=guest)
    assert await api.ok(SESSION_ID, {"token": guest}) == {"sessionFromToken": None}
    assert await api.ok(ACTIVE_ORDER, token=guest) == {"activeOrder": None}


async def test_login_without_an_active_order_adopts_the_guest_order(api: GraphQLClient) -> None:
    bob = await create_user(api, await admin_token(api), "bob")
    guest = (await add_item(api, "v1", 3)).response.headers["auth-token"]
    guest_order = (await api.ok(ACTIVE_ORDER, token=guest))["activeOrder"]
    session = (await api.ok(LOGIN, {"username": "bob", "password": "pw-bob"}, token=guest))["login"]
    adopted = (await api.ok(ACTIVE_ORDER, token=session["token"]))["activeOrder"]
    assert adopted == {**guest_order, "userId": bob["id"]}
