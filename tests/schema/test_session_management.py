"""mySessions, sessionsOfUser, revokeSession and logoutOtherSessions through the real app: who may see and
end which sessions, the order and pages of the lists, `current`, and what a session records of its client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.settings import Settings
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    ACTIVE_SESSION,
    SESSION_FROM_TOKEN,
    admin_token,
    anonymous_token,
    create_role,
    create_user,
    login_token,
    set_cookies,
)

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
INFO = "id kind current createdAt lastActiveAt authenticatedAt expires ipAddress userAgent device activeOrderId"
MY_SESSIONS = f"""
query Mine($options: SessionListOptions) {{
  mySessions(options: $options) {{ totalItems items {{ {INFO} activeChannelId impersonatorId }} }}
}}
"""
SESSIONS_OF_USER = f"""
query OfUser($userId: ID!, $options: SessionListOptions) {{
  sessionsOfUser(userId: $userId, options: $options) {{ totalItems items {{ {INFO} }} }}
}}
"""
REVOKE = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"
LOGOUT_OTHERS = "mutation Others { logoutOtherSessions }"
AUTHENTICATED_AT = "query Proof { activeSession { id authenticatedAt } }"


async def _user(api: GraphQLClient, admin: str, name: str, **fields: Any) -> str:
    user = await create_user(api, admin, name, verified=True, **fields)
    user_id: str = user["id"]
    return user_id


async def _login(api: GraphQLClient, name: str, agent: str = FIREFOX) -> str:
    return await login_token(api, name, f"pw-{name}") if agent == FIREFOX else await _login_as(api, name, agent)


async def _login_as(api: GraphQLClient, name: str, agent: str) -> str:
    api.http.headers["user-agent"] = agent
    try:
        return await login_token(api, name, f"pw-{name}")
    finally:
        api.http.headers["user-agent"] = FIREFOX


async def _mine(api: GraphQLClient, token: str, options: dict[str, int] | None = None) -> dict[str, Any]:
    data = await api.ok(MY_SESSIONS, {"options": options}, token=token)
    result: dict[str, Any] = data["mySessions"]
    return result


async def _session_id(api: GraphQLClient, token: str) -> str:
    data = await api.ok(ACTIVE_SESSION, token=token)
    session_id: str = data["activeSession"]["id"]
    return session_id


async def _works(api: GraphQLClient, token: str) -> bool:
    data = await api.ok(SESSION_FROM_TOKEN, {"token": token})
    return data["sessionFromToken"] is not None


@pytest.fixture
def agent_api(api: GraphQLClient) -> GraphQLClient:
    api.http.headers["user-agent"] = FIREFOX
    return api


async def test_my_sessions_lists_every_device_with_where_it_comes_from(agent_api: GraphQLClient) -> None:
    # given alice signed in on a laptop and then on a phone
    api = agent_api
    await _user(api, await admin_token(api), "alice")
    laptop = await _login(api, "alice")
    phone = await _login_as(api, "alice", IPHONE)

    # when the laptop lists her sessions
    mine = await _mine(api, laptop)

    # then both are there, the newest first, the laptop's marked current, each with its client
    assert mine["totalItems"] == 2
    assert [item["id"] for item in mine["items"]] == [await _session_id(api, phone), await _session_id(api, laptop)]
    first, second = mine["items"]
    assert (first["current"], second["current"]) == (False, True)
    assert (first["device"], second["device"]) == ("Mobile Safari 17 on iOS 17", "Firefox 133 on Linux")
    assert (first["userAgent"], second["userAgent"]) == (IPHONE, FIREFOX)
    assert {item["ipAddress"] for item in mine["items"]} == {"127.0.0.0"}  # truncated to the /24 by default
    assert {item["kind"] for item in mine["items"]} == {"AUTHENTICATED"}
    assert all(item["authenticatedAt"] == item["createdAt"] for item in mine["items"])
    assert all(item["lastActiveAt"] >= item["createdAt"] for item in mine["items"])
    assert first["activeChannelId"] == "1" and first["impersonatorId"] is None and first["activeOrderId"] is None


async def test_authenticated_at_is_set_by_login_only(agent_api: GraphQLClient) -> None:
    api = agent_api
    admin = await admin_token(api)
    user_id = await _user(api, admin, "alice")
    made = await api.ok(
        'mutation M($id: ID!) { createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "sso") '
        "{ token authenticatedAt } }",
        {"id": user_id},
        token=admin,
    )
    login = (await api.ok(AUTHENTICATED_AT, token=await _login(api, "alice")))["activeSession"]
    guest = (await api.ok(AUTHENTICATED_AT, token=await anonymous_token(api)))["activeSession"]

    assert made["createNewAuthenticatedSession"]["authenticatedAt"] is None
    assert login["authenticatedAt"] is not None and guest["authenticatedAt"] is None


async def test_session_lists_are_forbidden_without_a_user_or_the_permission(agent_api: GraphQLClient) -> None:
    api = agent_api
    alice_id = await _user(api, await admin_token(api), "alice")
    alice = await _login(api, "alice")
    guest = await anonymous_token(api)

    for token in (None, guest):
        for query, variables in ((MY_SESSIONS, {}), (REVOKE, {"id": "1"}), (LOGOUT_OTHERS, {})):
            result = await api.execute(query, variables, token=token)
            assert result.codes == ["FORBIDDEN"], (query, token)
    # a customer cannot read anyone's sessions by user id, their own included
    assert (await api.execute(SESSIONS_OF_USER, {"userId": alice_id}, token=alice)).codes == ["FORBIDDEN"]


async def test_sessions_of_user_needs_read_session_and_answers_unknown_users_with_nothing(
    agent_api: GraphQLClient,
) -> None:
    api = agent_api
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    await create_role(api, admin, "support", ["ReadSession"], ["1"])
    await _user(api, admin, "desk", roleIds=["2"])
    laptop = await _login(api, "alice")
    desk = await _login(api, "desk")

    listed = (await api.ok(SESSIONS_OF_USER, {"userId": alice_id}, token=desk))["sessionsOfUser"]
    assert [item["id"] for item in listed["items"]] == [await _session_id(api, laptop)]
    assert listed["items"][0]["current"] is False
    for unknown in ("999", "2147483647", "99999999999999"):
        answer = (await api.ok(SESSIONS_OF_USER, {"userId": unknown}, token=desk))["sessionsOfUser"]
        assert answer == {"totalItems": 0, "items": []}, unknown
    assert (await api.execute(SESSIONS_OF_USER, {"userId": "abc"}, token=desk)).codes == ["BAD_USER_INPUT"]


async def test_pages_are_bounded_and_ordered(agent_api: GraphQLClient) -> None:
    api = agent_api
    await _user(api, await admin_token(api), "alice")
    tokens = [await _login(api, "alice") for _ in range(3)]
    ids = [await _session_id(api, token) for token in tokens]
    newest_first = ids[::-1]

    assert [item["id"] for item in (await _mine(api, tokens[0]))["items"]] == newest_first
    page = await _mine(api, tokens[0], {"skip": 1, "take": 1})
    assert (page["totalItems"], [item["id"] for item in page["items"]]) == (3, newest_first[1:2])
    assert await _mine(api, tokens[0], {"skip": 3, "take": 100}) == {"totalItems": 3, "items": []}
    for options in ({"take": 0}, {"take": 101}, {"skip": -1}, {"take": -5}):
        result = await api.execute(MY_SESSIONS, {"options": options}, token=tokens[0])
        assert result.codes == ["BAD_USER_INPUT"], options


async def test_own_requests_move_a_session_up_but_lookups_by_token_do_not(
    make_client: ClientFactory, make_settings: SettingsFactory
) -> None:
    api = await make_client(make_settings(session_activity_resolution=0.05))
    await _user(api, await admin_token(api), "alice")
    old, middle, new = [await _login(api, "alice") for _ in range(3)]
    old_id, middle_id, new_id = [await _session_id(api, token) for token in (old, middle, new)]
    await asyncio.sleep(0.1)

    # a backend resolving `middle` does not count; `old` presenting its own token does
    assert await _works(api, middle)
    await api.ok(ACTIVE_SESSION, token=old)

    order = [item["id"] for item in (await _mine(api, new))["items"]]
    assert order[:2] == [new_id, old_id] or order[:2] == [old_id, new_id]  # `new` refreshed by this very request
    assert order[-1] == middle_id


async def test_revoke_session_ends_ones_own_other_session_at_once(agent_api: GraphQLClient) -> None:
    api = agent_api
    await _user(api, await admin_token(api), "alice")
    laptop, phone = await _login(api, "alice"), await _login(api, "alice")
    assert await _works(api, phone)  # cached: the revocation must reach the cache too

    assert (await api.ok(REVOKE, {"id": await _session_id(api, phone)}, token=laptop))["revokeSession"] is True

    assert not await _works(api, phone)
    assert (await api.ok(ACTIVE_SESSION, token=phone))["activeSession"] is None
    assert await _works(api, laptop)
    assert (await _mine(api, laptop))["totalItems"] == 1


async def test_a_foreign_deleted_or_unknown_id_is_answered_false_alike(agent_api: GraphQLClient) -> None:
    api = agent_api
    admin = await admin_token(api)
    await _user(api, admin, "alice")
    await _user(api, admin, "bob")
    alice, bob = await _login(api, "alice"), await _login(api, "bob")
    ended = await _login(api, "alice")
    ended_id = await _session_id(api, ended)
    await api.ok(REVOKE, {"id": ended_id}, token=alice)
    guest_id = await _session_id(api, await anonymous_token(api))
    admin_id = await _session_id(api, admin)

    for foreign in (await _session_id(api, bob), guest_id, admin_id, ended_id, "999999", "2147483648", "0"):
        assert (await api.ok(REVOKE, {"id": foreign}, token=alice))["revokeSession"] is False, foreign
    assert await _works(api, bob) and await _works(api, admin)
    for malformed in ("abc", "-1", "1.5", ""):
        assert (await api.execute(REVOKE, {"id": malformed}, token=alice)).codes == ["BAD_USER_INPUT"], malformed


async def test_delete_session_lets_an_administrator_revoke_anyones_session(agent_api: GraphQLClient) -> None:
    api = agent_api
    admin = await admin_token(api)
    await _user(api, admin, "alice")
    alice = await _login(api, "alice")
    guest = await anonymous_token(api)

    for token in (alice, guest):
        assert (await api.ok(REVOKE, {"id": await _session_id(api, token)}, token=admin))["revokeSession"] is True
        assert not await _works(api, token)
    assert await _works(api, admin)


async def test_revoking_the_current_session_is_a_logout(client: GraphQLClient) -> None:
    # given alice signed in with a cookie
    admin = await admin_token(client)
    await create_user(client, admin, "alice", verified=True)
    await client.ok(
        'mutation L { login(username: "alice", password: "pw-alice") { __typename ... on CachedSession { id } } }'
    )
    current = (await client.ok(ACTIVE_SESSION))["activeSession"]

    # when she revokes the session her cookie carries
    result = await client.execute(REVOKE, {"id": current["id"]})

    # then it ends at once and the cookie is cleared
    assert result.data == {"revokeSession": True}
    assert any(
        cookie["_name"] == "session" and cookie["_value"] in ("", '""') for cookie in set_cookies(result.response)
    )
    assert (await client.ok(ACTIVE_SESSION))["activeSession"] is None
    assert not await _works(client, current["token"])


async def test_logout_other_sessions_keeps_only_this_one(agent_api: GraphQLClient) -> None:
    api = agent_api
    admin = await admin_token(api)
    await _user(api, admin, "alice")
    await _user(api, admin, "bob")
    keep, *others = [await _login(api, "alice") for _ in range(3)]
    bob = await _login(api, "bob")

    assert (await api.ok(LOGOUT_OTHERS, token=keep))["logoutOtherSessions"] == 2

    assert [await _works(api, token) for token in (keep, *others, bob)] == [True, False, False, True]
    mine = await _mine(api, keep)
    assert (mine["totalItems"], mine["items"][0]["current"]) == (1, True)
    assert (await api.ok(LOGOUT_OTHERS, token=keep))["logoutOtherSessions"] == 0


@pytest.mark.parametrize(
    ("overrides", "address", "agent"),
    [
        ({}, "127.0.0.0", FIREFOX),
        ({"session_client_address": "full", "session_user_agent_max": 20}, "127.0.0.1", FIREFOX[:20]),
        ({"session_client_address": "off"}, None, FIREFOX),
    ],
    ids=["truncated", "full", "off"],
)
async def test_what_is_kept_of_the_client_follows_the_settings(
    make_client: ClientFactory,
    make_settings: SettingsFactory,
    overrides: dict[str, Any],
    address: str | None,
    agent: str,
) -> None:
    api = await make_client(make_settings(**overrides))
    api.http.headers["user-agent"] = FIREFOX
    await _user(api, await admin_token(api), "alice")

    (item,) = (await _mine(api, await _login(api, "alice")))["items"]

    assert (item["ipAddress"], item["userAgent"]) == (address, agent)


def test_settings_read_the_session_management_variables() -> None:
    settings = Settings.from_env(
        {"SESSION_ACTIVITY_RESOLUTION": "1m", "SESSION_CLIENT_ADDRESS": "Full", "SESSION_USER_AGENT_MAX": "64"}
    )
    defaults = Settings.from_env({})

    assert (settings.session_activity_resolution, settings.session_client_address, settings.session_user_agent_max) == (
        60.0,
        "full",
        64,
    )
    assert (defaults.session_activity_resolution, defaults.session_client_address, defaults.session_user_agent_max) == (
        300.0,
        "truncated",
        256,
    )
