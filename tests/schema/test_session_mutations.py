"""createAnonymousSession, the active-order/channel mutations and the session deletions."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    CREATE_ANONYMOUS_SESSION,
    SESSION_FROM_TOKEN,
    add_item,
    admin_token,
    anonymous_token,
    create_user,
    login_token,
    set_cookies,
)

SET_ACTIVE_ORDER = "mutation SetOrder($id: ID!) { setActiveOrder(orderId: $id) { id activeOrderId } }"
UNSET_ACTIVE_ORDER = "mutation UnsetOrder { unsetActiveOrder { id activeOrderId } }"
SET_ACTIVE_CHANNEL = "mutation SetChannel($id: ID!) { setActiveChannel(channelId: $id) { id activeChannelId } }"
DELETE_BY_USER = "mutation DeleteByUser($id: ID!) { deleteSessionsByUser(userId: $id) }"
DELETE_BY_ORDER = "mutation DeleteByOrder($id: ID!) { deleteSessionsByActiveOrderId(activeOrderId: $id) }"
CLEAN_EXPIRED = "mutation Clean($size: Int!) { cleanExpiredSessions(batchSize: $size) }"
CLEAN_EXPIRED_DEFAULT = "mutation CleanDefault { cleanExpiredSessions }"
SESSION_ID = "query Id($token: String!) { sessionFromToken(token: $token) { id } }"


async def test_create_anonymous_session_returns_an_anonymous_cached_session(client: GraphQLClient) -> None:
    before = time.time()
    session = (await client.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    expires_at = datetime.fromisoformat(session.pop("expires"))
    assert expires_at.utcoffset() is not None
    expires = expires_at.timestamp()
    cache_expiry = session.pop("cacheExpiry")
    assert len(session.pop("token")) >= 43
    assert session == {
        "id": "1",
        "activeOrderId": None,
        "authenticationStrategy": None,
        "activeChannelId": "1",
        "user": None,
    }
    assert before + 31536000 - 5 <= expires <= time.time() + 31536000 + 5
    assert before + 300 - 5 <= cache_expiry <= time.time() + 300 + 5


async def test_create_anonymous_session_sends_the_token_in_header_and_cookie(client: GraphQLClient) -> None:
    result = await client.execute(CREATE_ANONYMOUS_SESSION)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert result.response.headers["auth-token"] == token
    assert set_cookies(result.response) == [
        {"_name": "session", "_value": token, "httponly": "", "samesite": "lax", "path": "/", "max-age": "31536000"}
    ]


async def test_session_cookie_max_age_follows_session_duration(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(session_duration=7200.0))
    result = await client.execute(CREATE_ANONYMOUS_SESSION)
    assert [cookie["max-age"] for cookie in set_cookies(result.response)] == ["7200"]


async def test_session_cookie_is_secure_only_with_cookie_secure(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    secure = await make_client(make_settings(cookie_secure=True))
    result = await secure.execute(CREATE_ANONYMOUS_SESSION)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert set_cookies(result.response) == [
        {
            "_name": "session",
            "_value": token,
            "httponly": "",
            "samesite": "lax",
            "path": "/",
            "max-age": "31536000",
            "secure": "",
        }
    ]


@pytest.mark.parametrize(
    ("operation", "variables"),
    [(SET_ACTIVE_ORDER, {"id": "1"}), (UNSET_ACTIVE_ORDER, {}), (SET_ACTIVE_CHANNEL, {"id": "1"})],
)
async def test_session_mutations_without_a_session_are_forbidden(
    api: GraphQLClient, operation: str, variables: dict[str, str]
) -> None:
    result = await api.execute(operation, variables)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


@pytest.mark.parametrize(("channel_id", "code"), [("999", "ENTITY_NOT_FOUND"), ("abc", "BAD_USER_INPUT")])
async def test_set_active_channel_rejects_bad_ids(api: GraphQLClient, channel_id: str, code: str) -> None:
    token = await anonymous_token(api)
    result = await api.execute(SET_ACTIVE_CHANNEL, {"id": channel_id}, token=token)
    assert (result.data, result.codes) == (None, [code])


async def test_unset_active_order_clears_the_active_order(api: GraphQLClient) -> None:
    token = await anonymous_token(api)
    order = (await add_item(api, "v1", 1, token=token)).data
    assert order is not None
    data = await api.ok(UNSET_ACTIVE_ORDER, token=token)
    assert data == {"unsetActiveOrder": {"id": "1", "activeOrderId": None}}


async def test_delete_sessions_by_user_on_own_id_needs_no_permission(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    user = await create_user(api, admin, "plain")
    first = await login_token(api, "plain", "pw-plain")
    second = await login_token(api, "plain", "pw-plain")
    data = await api.ok(DELETE_BY_USER, {"id": user["id"]}, token=first)
    assert data == {"deleteSessionsByUser": 2}
    assert await api.ok(SESSION_ID, {"token": second}) == {"sessionFromToken": None}
    assert await api.ok(SESSION_ID, {"token": first}) == {"sessionFromToken": None}


async def test_delete_sessions_by_user_of_another_user_is_forbidden(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_user(api, admin, "plain")
    plain = await login_token(api, "plain", "pw-plain")
    result = await api.execute(DELETE_BY_USER, {"id": "1"}, token=plain)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])
    assert (await api.ok(SESSION_ID, {"token": admin}))["sessionFromToken"] is not None


async def test_delete_sessions_by_user_with_delete_session_ends_them_at_once(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    user = await create_user(api, admin, "plain")
    plain = await login_token(api, "plain", "pw-plain")
    assert (await api.ok(SESSION_ID, {"token": plain}))["sessionFromToken"] is not None  # now cached
    assert await api.ok(DELETE_BY_USER, {"id": user["id"]}, token=admin) == {"deleteSessionsByUser": 1}
    assert await api.ok(SESSION_FROM_TOKEN, {"token": plain}) == {"sessionFromToken": None}


async def test_delete_sessions_by_user_as_guest_is_forbidden(api: GraphQLClient) -> None:
    guest = await anonymous_token(api)
    result = await api.execute(DELETE_BY_USER, {"id": "1"}, token=guest)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_delete_sessions_by_active_order_id_needs_delete_session(api: GraphQLClient) -> None:
    guest = await anonymous_token(api)
    order = (await add_item(api, "v1", 1, token=guest)).data
    assert order is not None
    result = await api.execute(DELETE_BY_ORDER, {"id": order["addItemToOrder"]["id"]}, token=guest)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_delete_sessions_by_active_order_id_ends_the_holders(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    guest = await anonymous_token(api)
    order = (await add_item(api, "v1", 1, token=guest)).data
    assert order is not None
    data = await api.ok(DELETE_BY_ORDER, {"id": order["addItemToOrder"]["id"]}, token=admin)
    assert data == {"deleteSessionsByActiveOrderId": 1}
    assert await api.ok(SESSION_ID, {"token": guest}) == {"sessionFromToken": None}


async def test_clean_expired_sessions_as_guest_is_forbidden(api: GraphQLClient) -> None:
    guest = await anonymous_token(api)
    result = await api.execute(CLEAN_EXPIRED_DEFAULT, token=guest)
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


@pytest.mark.parametrize("size", [0, -1])
async def test_clean_expired_sessions_rejects_non_positive_batch_size(api: GraphQLClient, size: int) -> None:
    admin = await admin_token(api)
    result = await api.execute(CLEAN_EXPIRED, {"size": size}, token=admin)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_clean_expired_sessions_removes_only_expired_ones(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(session_duration=1.0))
    await anonymous_token(client)
    await anonymous_token(client)
    await asyncio.sleep(1.1)
    admin = await admin_token(client)
    assert await client.ok(CLEAN_EXPIRED, {"size": 1}, token=admin) == {"cleanExpiredSessions": 1}
    assert await client.ok(CLEAN_EXPIRED_DEFAULT, token=admin) == {"cleanExpiredSessions": 1}
    assert await client.ok(CLEAN_EXPIRED_DEFAULT, token=admin) == {"cleanExpiredSessions": 0}
