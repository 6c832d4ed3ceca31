"""createChannel, createRole / updateRole, createUser and createNewAuthenticatedSession."""

from __future__ import annotations

import pytest

from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    ACTIVE_SESSION,
    CREATE_CHANNEL,
    CREATE_ROLE,
    CREATE_USER,
    LOGIN,
    SESSION_FROM_TOKEN,
    admin_token,
    anonymous_token,
    create_channel,
    create_role,
    create_user,
    login_token,
)

UPDATE_ROLE = """
mutation UpdateRole($input: UpdateRoleInput!) {
  updateRole(input: $input) { id code description permissions channels { id code } }
}
"""
PERMISSIONS = "query Permissions { activeSession { user { channelPermissions { id permissions } } } }"
CLEAN_EXPIRED = "mutation Clean { cleanExpiredSessions }"
IMPERSONATE = """
mutation Impersonate($userId: ID!, $strategy: String!) {
  createNewAuthenticatedSession(userId: $userId, authenticationStrategyName: $strategy) {
    token authenticationStrategy activeOrderId user { id identifier }
  }
}
"""
PASSWORD = "correct horse battery staple"


async def test_create_channel_generates_a_token_when_omitted(api: GraphQLClient) -> None:
    channel = await create_channel(api, await admin_token(api), "uk")
    assert ({**channel, "token": None}, len(channel["token"]) >= 16) == ({"id": "2", "code": "uk", "token": None}, True)


async def test_create_channel_keeps_a_given_token(api: GraphQLClient) -> None:
    channel = await create_channel(api, await admin_token(api), "uk", "uk-token")
    assert channel == {"id": "2", "code": "uk", "token": "uk-token"}


@pytest.mark.parametrize("second", [{"code": "uk"}, {"code": "fr", "token": "uk-token"}], ids=["code", "token"])
async def test_create_channel_rejects_a_duplicate(api: GraphQLClient, second: dict[str, str]) -> None:
    admin = await admin_token(api)
    await create_channel(api, admin, "uk", "uk-token")
    result = await api.execute(CREATE_CHANNEL, {"input": second}, token=admin)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_create_channel_as_guest_is_forbidden(api: GraphQLClient) -> None:
    result = await api.execute(CREATE_CHANNEL, {"input": {"code": "uk"}}, token=await anonymous_token(api))
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_create_channel_grants_it_to_a_logged_in_superadmin_at_once(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    assert len((await api.ok(PERMISSIONS, token=admin))["activeSession"]["user"]["channelPermissions"]) == 1
    await create_channel(api, admin, "uk", "uk-token")
    role_input = {"code": "uk-editor", "permissions": [], "channelIds": ["2"]}
    result = await api.execute(CREATE_ROLE, {"input": role_input}, token=admin, headers={"channel-token": "uk-token"})
    assert (result.errors, result.data and result.data["createRole"]["code"]) == (None, "uk-editor")


async def test_create_role_returns_the_role(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    channel = await create_channel(api, admin, "uk", "uk-token")
    role = await create_role(api, admin, "editor", ["ReadSession"], [channel["id"]])
    assert role == {
        "id": "2",
        "code": "editor",
        "description": "",
        "permissions": ["ReadSession"],
        "channels": [channel],
    }


async def test_create_role_with_an_unknown_channel_is_not_found(api: GraphQLClient) -> None:
    role_input = {"code": "editor", "permissions": ["ReadSession"], "channelIds": ["1", "77"]}
    result = await api.execute(CREATE_ROLE, {"input": role_input}, token=await admin_token(api))
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])


async def test_update_role_with_an_unknown_channel_is_not_found(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    role = await create_role(api, admin, "editor", ["ReadSession"], ["1"])
    result = await api.execute(UPDATE_ROLE, {"input": {"id": role["id"], "channelIds": ["77"]}}, token=admin)
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])


async def test_update_role_with_an_unknown_id_is_not_found(api: GraphQLClient) -> None:
    result = await api.execute(UPDATE_ROLE, {"input": {"id": "77"}}, token=await admin_token(api))
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])


async def test_update_role_changes_only_the_given_fields(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    role = await create_role(api, admin, "editor", ["ReadSession"], ["1"])
    updated = await api.ok(UPDATE_ROLE, {"input": {"id": role["id"], "description": "Edits"}}, token=admin)
    assert updated == {
        "updateRole": {
            "id": role["id"],
            "code": "editor",
            "description": "Edits",
            "permissions": ["ReadSession"],
            "channels": [{"id": "1", "code": "__default_channel__"}],
        }
    }


async def test_update_role_changes_a_logged_in_users_permissions_at_once(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    role = await create_role(api, admin, "editor", ["ReadSession"], ["1"])
    await create_user(api, admin, "alice", roleIds=[role["id"]])
    alice = await login_token(api, "alice", "pw-alice")
    before = {"activeSession": {"user": {"channelPermissions": [{"id": "1", "permissions": ["ReadSession"]}]}}}
    assert await api.ok(PERMISSIONS, token=alice) == before  # cached now
    assert (await api.execute(CLEAN_EXPIRED, token=alice)).codes == ["FORBIDDEN"]
    update = {"id": role["id"], "permissions": ["DeleteSession", "ReadSession"]}
    await api.ok(UPDATE_ROLE, {"input": update}, token=admin)
    permissions = (await api.ok(PERMISSIONS, token=alice))["activeSession"]["user"]["channelPermissions"]
    assert [(c["id"], set(c["permissions"])) for c in permissions] == [("1", {"DeleteSession", "ReadSession"})]
    assert await api.ok(CLEAN_EXPIRED, token=alice) == {"cleanExpiredSessions": 0}


async def test_create_user_returns_the_user(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    role = await create_role(api, admin, "editor", ["ReadSession"], ["1"])
    user = await create_user(api, admin, "alice", roleIds=[role["id"]], verified=False)
    assert user == {
        "id": "2",
        "identifier": "alice",
        "verified": False,
        "lastLogin": None,
        "roles": [{"id": role["id"], "code": "editor"}],
    }


async def test_create_user_rejects_a_duplicate_identifier(api: GraphQLClient) -> None:
    result = await api.execute(CREATE_USER, {"input": {"identifier": "superadmin"}}, token=await admin_token(api))
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])


async def test_create_user_with_an_unknown_role_is_not_found(api: GraphQLClient) -> None:
    user_input = {"identifier": "alice", "roleIds": ["77"]}
    result = await api.execute(CREATE_USER, {"input": user_input}, token=await admin_token(api))
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])


async def test_the_password_never_appears_in_a_response(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    user_input = {"identifier": "alice", "password": PASSWORD}
    responses = [(await api.execute(CREATE_USER, {"input": user_input}, token=admin)).response]
    login = await api.execute(LOGIN, {"username": "alice", "password": PASSWORD})
    token = login.data["login"]["token"] if login.data else ""
    responses += [login.response, (await api.execute(ACTIVE_SESSION, token=token)).response]
    responses.append((await api.execute(SESSION_FROM_TOKEN, {"token": token})).response)
    responses.append((await api.execute(CREATE_USER, {"input": user_input}, token=admin)).response)  # duplicate
    texts = [response.text + str(response.headers) for response in responses]
    assert [PASSWORD in text or "argon2" in text for text in texts] == [False] * 5


async def test_no_output_type_exposes_a_password_field(api: GraphQLClient) -> None:
    data = await api.ok("{ __schema { types { name fields { name } } } }")
    types = [t for t in data["__schema"]["types"] if t["name"] != "Mutation"]  # operations (changePassword) return none
    fields = [f"{t['name']}.{f['name']}" for t in types for f in t["fields"] or []]
    assert [field for field in fields if "password" in field.lower() or "hash" in field.lower()] == []


async def test_impersonation_is_forbidden_for_a_guest(api: GraphQLClient) -> None:
    variables = {"userId": "1", "strategy": "sso"}
    result = await api.execute(IMPERSONATE, variables, token=await anonymous_token(api))
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_impersonation_is_forbidden_for_a_user_without_the_permission(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "alice")
    variables = {"userId": "1", "strategy": "sso"}
    result = await api.execute(IMPERSONATE, variables, token=await login_token(api, "alice", "pw-alice"))
    assert (result.data, result.codes) == (None, ["FORBIDDEN"])


async def test_impersonation_returns_a_session_for_that_user(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    alice = await create_user(api, admin, "alice")
    session = (await api.ok(IMPERSONATE, {"userId": alice["id"], "strategy": "sso"}, token=admin))[
        "createNewAuthenticatedSession"
    ]
    token = session.pop("token")
    assert session == {
        "authenticationStrategy": "sso",
        "activeOrderId": None,
        "user": {"id": "2", "identifier": "alice"},
    }
    resolved = (await api.ok(SESSION_FROM_TOKEN, {"token": token}))["sessionFromToken"]
    assert (resolved["user"]["identifier"], resolved["authenticationStrategy"]) == ("alice", "sso")
    assert (await api.ok(SESSION_FROM_TOKEN, {"token": admin}))["sessionFromToken"] is not None


async def test_impersonation_of_an_unknown_user_is_not_found(api: GraphQLClient) -> None:
    result = await api.execute(IMPERSONATE, {"userId": "77", "strategy": "sso"}, token=await admin_token(api))
    assert (result.data, result.codes) == (None, ["ENTITY_NOT_FOUND"])
