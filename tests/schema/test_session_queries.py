"""sessionFromToken, activeSession, serializeSession, activeChannel and the channel token header."""

from __future__ import annotations

import secrets

import pytest

from tests.graphql import GraphQLClient, refusal
from tests.schema.helpers import (
    ACTIVE_SESSION,
    CREATE_ANONYMOUS_SESSION,
    SESSION_FIELDS,
    SESSION_FROM_TOKEN,
    admin_token,
    anonymous_token,
    create_channel,
)

SERIALIZE_SESSION = (
    "query Serialize($token: String!) { serializeSession(token: $token) { ...SessionFields } }" + SESSION_FIELDS
)
ACTIVE_CHANNEL = "query ActiveChannel { activeChannel { id code token } }"
ACTIVE_CHANNEL_ID = "query ActiveChannelId { activeSession { activeChannelId } }"


async def test_session_from_token_returns_the_created_session(api: GraphQLClient) -> None:
    created = (await api.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    assert await api.ok(SESSION_FROM_TOKEN, {"token": created["token"]}) == {"sessionFromToken": created}


@pytest.mark.parametrize(
    "token",
    [secrets.token_urlsafe(32), "garbage", "", " ", "x" * 10_000, "💥\u0000", "Bearer abc"],
    ids=["unknown", "short", "empty", "blank", "huge", "unicode", "scheme"],
)
async def test_session_from_token_is_null_for_a_token_naming_nothing(api: GraphQLClient, token: str) -> None:
    result = await api.execute(SESSION_FROM_TOKEN, {"token": token})
    assert (result.data, result.errors) == ({"sessionFromToken": None}, None)


async def test_active_session_is_null_without_a_token(api: GraphQLClient) -> None:
    assert await api.ok(ACTIVE_SESSION) == {"activeSession": None}


async def test_active_session_from_the_session_cookie(client: GraphQLClient) -> None:
    created = (await client.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    assert await client.ok(ACTIVE_SESSION) == {"activeSession": created}


async def test_active_session_from_a_bearer_token(api: GraphQLClient) -> None:
    created = (await api.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    assert await api.ok(ACTIVE_SESSION) == {"activeSession": None}
    assert await api.ok(ACTIVE_SESSION, token=created["token"]) == {"activeSession": created}


async def test_serialize_session_is_forbidden_for_a_guest(api: GraphQLClient) -> None:
    guest = await anonymous_token(api)
    result = await api.execute(SERIALIZE_SESSION, {"token": guest}, token=guest)
    assert (result.data, result.codes) == ({"serializeSession": None}, ["FORBIDDEN"])


async def test_serialize_session_is_forbidden_without_a_session(api: GraphQLClient) -> None:
    guest = await anonymous_token(api)
    result = await api.execute(SERIALIZE_SESSION, {"token": guest})
    assert (result.data, result.codes) == ({"serializeSession": None}, ["FORBIDDEN"])


async def test_serialize_session_for_superadmin_reads_the_stored_session(api: GraphQLClient) -> None:
    created = (await api.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    admin = await admin_token(api)
    serialized = (await api.ok(SERIALIZE_SESSION, {"token": created["token"]}, token=admin))["serializeSession"]
    assert serialized["cacheExpiry"] >= created["cacheExpiry"]
    assert {**serialized, "cacheExpiry": None} == {**created, "cacheExpiry": None}


async def test_serialize_session_of_an_unknown_token_is_null(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    data = await api.ok(SERIALIZE_SESSION, {"token": secrets.token_urlsafe(32)}, token=admin)
    assert data == {"serializeSession": None}


async def test_active_channel_is_the_default_channel_without_a_header(api: GraphQLClient) -> None:
    channel = (await api.ok(ACTIVE_CHANNEL))["activeChannel"]
    assert {**channel, "token": None} == {"id": "1", "code": "__default_channel__", "token": None}
    assert await api.ok(ACTIVE_CHANNEL, headers={"channel-token": channel["token"]}) == {"activeChannel": channel}


async def test_channel_token_header_selects_the_channel(api: GraphQLClient) -> None:
    channel = await create_channel(api, await admin_token(api), "uk", "uk-token")
    assert await api.ok(ACTIVE_CHANNEL, headers={"channel-token": "uk-token"}) == {"activeChannel": channel}


async def test_session_used_on_another_channel_gets_its_active_channel_updated(api: GraphQLClient) -> None:
    await create_channel(api, await admin_token(api), "uk", "uk-token")
    guest = await anonymous_token(api)
    assert await api.ok(ACTIVE_CHANNEL_ID, token=guest) == {"activeSession": {"activeChannelId": "1"}}
    data = await api.ok(ACTIVE_CHANNEL_ID, token=guest, headers={"channel-token": "uk-token"})
    assert data == {"activeSession": {"activeChannelId": "2"}}
    stored = (await api.ok(SESSION_FROM_TOKEN, {"token": guest}))["sessionFromToken"]
    assert stored["activeChannelId"] == "2"


async def test_set_active_channel_moves_the_session(api: GraphQLClient) -> None:
    await create_channel(api, await admin_token(api), "uk", "uk-token")
    guest = await anonymous_token(api)
    data = await api.ok(
        "mutation Set($id: ID!) { setActiveChannel(channelId: $id) { activeChannelId } }", {"id": "2"}, token=guest
    )
    assert data == {"setActiveChannel": {"activeChannelId": "2"}}
    stored = (await api.ok(SESSION_FROM_TOKEN, {"token": guest}))["sessionFromToken"]
    assert stored["activeChannelId"] == "2"


async def test_unknown_channel_token_is_http_400(api: GraphQLClient) -> None:
    response = await api.http.post(
        "/graphql", json={"query": ACTIVE_CHANNEL}, headers={"channel-token": "no-such-channel"}
    )
    expected = refusal("No channel matches the channel-token header", "CHANNEL_NOT_FOUND")
    assert (response.status_code, response.json()) == (400, expected)
