"""A user's sessions end when the user is deleted or their password changes; role changes apply at once.

Through the real app (httpx over ASGI, lifespan included). Every session under test has been used
first, so a cached copy exists and the test proves it is no longer served. The login limiter is
switched off here: these tests log in often and are not about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.schema.helpers import SUPERADMIN

MakeClient = Callable[[Settings], Any]

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename
    ... on CachedSession { token user { id identifier channelPermissions { permissions } } }
  }
}
"""
ACTIVE_SESSION = "query { activeSession { id user { id identifier verified } } }"
SESSION_FROM_TOKEN = "query($t: String!) { sessionFromToken(token: $t) { id } }"
CREATE_USER = """
mutation($input: CreateUserInput!) { createUser(input: $input) { id identifier } }
"""
CREATE_ROLE = """
mutation($input: CreateRoleInput!) { createRole(input: $input) { id } }
"""
UPDATE_USER = """
mutation($input: UpdateUserInput!) {
  updateUser(input: $input) { id identifier verified roles { code } }
}
"""
DELETE_USER = "mutation($id: ID!) { deleteUser(id: $id) { success } }"
CHANGE_PASSWORD = """
mutation($current: String!, $new: String!) { changePassword(currentPassword: $current, newPassword: $new) { success } }
"""
ADD_ITEM = 'mutation { addItemToOrder(productVariantId: "sku-1", quantity: 1) { id userId } }'
CREATE_CHANNEL = "mutation($code: String!) { createChannel(input: {code: $code}) { id } }"


class Api:
    """The app through one client that never keeps cookies: every request names its token."""

    def __init__(self, client: GraphQLClient) -> None:
        self.client = client

    async def run(self, query: str, token: str | None = None, **variables: Any) -> GraphQLResult:
        self.client.http.cookies.clear()
        return await self.client.execute(query, variables, token=token)

    async def ok(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        result = await self.run(query, token, **variables)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data

    async def login(self, username: str, password: str) -> str:
        session = (await self.ok(LOGIN, username=username, password=password))["login"]
        assert session["__typename"] == "CachedSession", session
        token: str = session["token"]
        return token

    async def login_typename(self, username: str, password: str) -> str:
        typename: str = (await self.ok(LOGIN, username=username, password=password))["login"]["__typename"]
        return typename

    async def alive(self, token: str) -> bool:
        """Whether `token` names a session, asked both ways: as the request's token and by sessionFromToken."""
        as_request = (await self.ok(ACTIVE_SESSION, token))["activeSession"] is not None
        by_lookup = (await self.ok(SESSION_FROM_TOKEN, t=token))["sessionFromToken"] is not None
        assert as_request == by_lookup
        return as_request

    async def create_user(self, admin: str, identifier: str, **fields: Any) -> str:
        user_input = {"identifier": identifier, "password": f"pw-{identifier}", **fields}
        user_id: str = (await self.ok(CREATE_USER, admin, input=user_input))["createUser"]["id"]
        return user_id


@pytest.fixture
async def api(make_settings: SettingsFactory, make_client: MakeClient) -> Api:
    return Api(await make_client(make_settings(login_rate_limit=None)))


async def devices(api: Api, identifier: str, count: int, password: str | None = None) -> list[str]:
    """`count` sessions of the user (one per device), each used once so that it is cached."""
    tokens = [await api.login(identifier, password or f"pw-{identifier}") for _ in range(count)]
    for token in tokens:
        assert await api.alive(token)
    return tokens


# -- deleteUser -------------------------------------------------------------------------------------


async def test_deleting_a_user_ends_all_of_their_sessions_at_once(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    gina = await api.create_user(admin, "gina")
    phone, laptop = await devices(api, "gina", 2)
    order = (await api.ok(ADD_ITEM, phone))["addItemToOrder"]
    assert order["userId"] == gina

    assert await api.ok(DELETE_USER, admin, id=gina) == {"deleteUser": {"success": True}}

    assert [await api.alive(token) for token in (phone, laptop)] == [False, False]
    assert await api.login_typename("gina", "pw-gina") == "InvalidCredentialsError"
    # the dead token is not revived: an Owner operation starts a new guest session and a new cart
    added = await api.run(ADD_ITEM, phone)
    assert added.errors is None and added.data is not None
    assert added.data["addItemToOrder"]["userId"] is None
    assert added.response.headers["auth-token"] != phone
    assert await api.alive(admin)


async def test_delete_user_checks_its_id_and_needs_delete_user(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    hank = await api.create_user(admin, "hank")
    hank_token = await api.login("hank", "pw-hank")
    superadmin_id = (await api.ok(ACTIVE_SESSION, admin))["activeSession"]["user"]["id"]

    assert (await api.run(DELETE_USER, hank_token, id=superadmin_id)).codes == ["FORBIDDEN"]
    assert (await api.run(DELETE_USER, None, id=superadmin_id)).codes == ["FORBIDDEN"]
    assert (await api.run(DELETE_USER, admin, id="abc")).codes == ["BAD_USER_INPUT"]
    assert (await api.run(DELETE_USER, admin, id="999999")).codes == ["ENTITY_NOT_FOUND"]
    assert await api.ok(DELETE_USER, admin, id=hank) == {"deleteUser": {"success": True}}
    assert (await api.run(DELETE_USER, admin, id=hank)).codes == ["ENTITY_NOT_FOUND"]
    assert await api.alive(admin)


# -- updateUser ------------------------------------------------------------------------------------


async def test_a_password_set_by_an_administrator_ends_all_of_the_users_sessions(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    jack = await api.create_user(admin, "jack")
    sessions = await devices(api, "jack", 2)

    updated = await api.ok(UPDATE_USER, admin, input={"id": jack, "password": "new-secret"})

    assert updated["updateUser"]["identifier"] == "jack"
    assert [await api.alive(token) for token in sessions] == [False, False]
    assert await api.login_typename("jack", "pw-jack") == "InvalidCredentialsError"
    assert await api.login_typename("jack", "new-secret") == "CachedSession"
    assert await api.alive(admin)


async def test_an_administrator_setting_their_own_password_through_update_user_ends_every_session(
    api: Api,
) -> None:
    admin = await api.login(*SUPERADMIN)
    channel_id = (await api.ok("{ activeChannel { id } }"))["activeChannel"]["id"]
    role = await api.ok(
        CREATE_ROLE, admin, input={"code": "user-admin", "permissions": ["UpdateUser"], "channelIds": [channel_id]}
    )
    kate = await api.create_user(admin, "kate", roleIds=[role["createRole"]["id"]])
    kate_token, other = await devices(api, "kate", 2)

    await api.ok(UPDATE_USER, kate_token, input={"id": kate, "password": "kate-2"})

    assert [await api.alive(token) for token in (kate_token, other)] == [False, False]


async def test_role_changes_apply_to_cached_sessions_at_once(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    channel_id = (await api.ok("{ activeChannel { id } }"))["activeChannel"]["id"]
    role = await api.ok(
        CREATE_ROLE,
        admin,
        input={"code": "channel-maker", "permissions": ["CreateChannel"], "channelIds": [channel_id]},
    )
    role_id = role["createRole"]["id"]
    liam = await api.create_user(admin, "liam", roleIds=[role_id])
    (token,) = await devices(api, "liam", 1)
    assert (await api.run(CREATE_CHANNEL, token, code="liam-1")).errors is None

    # the role is taken away: the cached session must not keep the permission
    revoked = await api.ok(UPDATE_USER, admin, input={"id": liam, "roleIds": []})
    assert revoked["updateUser"]["roles"] == []
    assert (await api.run(CREATE_CHANNEL, token, code="liam-2")).codes == ["FORBIDDEN"]

    # and given back: the same session has it again, without logging in anew
    await api.ok(UPDATE_USER, admin, input={"id": liam, "roleIds": [role_id]})
    assert (await api.run(CREATE_CHANNEL, token, code="liam-3")).errors is None
    assert await api.alive(token)


async def test_identifier_and_verification_changes_show_in_cached_sessions(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    mia = await api.create_user(admin, "mia")
    await api.create_user(admin, "taken")
    (token,) = await devices(api, "mia", 1)

    updated = await api.ok(UPDATE_USER, admin, input={"id": mia, "identifier": "mia.new", "verified": False})

    assert updated["updateUser"] == {"id": mia, "identifier": "mia.new", "verified": False, "roles": []}
    session = (await api.ok(ACTIVE_SESSION, token))["activeSession"]
    assert session["user"] == {"id": mia, "identifier": "mia.new", "verified": False}
    assert (await api.run(UPDATE_USER, admin, input={"id": mia, "identifier": "taken"})).codes == ["BAD_USER_INPUT"]
    assert (await api.run(UPDATE_USER, admin, input={"id": mia, "identifier": " "})).codes == ["BAD_USER_INPUT"]
    assert (await api.run(UPDATE_USER, admin, input={"id": mia, "password": ""})).codes == ["BAD_USER_INPUT"]
    assert (await api.run(UPDATE_USER, admin, input={"id": mia, "roleIds": ["999999"]})).codes == ["ENTITY_NOT_FOUND"]
    assert (await api.run(UPDATE_USER, admin, input={"id": "999999"})).codes == ["ENTITY_NOT_FOUND"]
    assert (await api.run(UPDATE_USER, token, input={"id": mia, "verified": True})).codes == ["FORBIDDEN"]
    assert await api.alive(token)


# -- changePassword ---------------------------------------------------------------------------------


async def test_changing_ones_own_password_ends_every_other_session_and_keeps_this_one(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    await api.create_user(admin, "noah")
    here, phone, tablet = await devices(api, "noah", 3)

    wrong = await api.ok(CHANGE_PASSWORD, here, current="not-it", new="noah-2")
    assert wrong == {"changePassword": {"success": False}}
    assert [await api.alive(token) for token in (here, phone, tablet)] == [True, True, True]

    changed = await api.ok(CHANGE_PASSWORD, here, current="pw-noah", new="noah-2")

    assert changed == {"changePassword": {"success": True}}
    assert [await api.alive(token) for token in (here, phone, tablet)] == [True, False, False]
    assert await api.login_typename("noah", "pw-noah") == "InvalidCredentialsError"
    assert await api.login_typename("noah", "noah-2") == "CachedSession"
    assert await api.alive(admin)


async def test_change_password_needs_a_logged_in_user_and_a_valid_new_password(api: Api) -> None:
    admin = await api.login(*SUPERADMIN)
    await api.create_user(admin, "olga")
    (token,) = await devices(api, "olga", 1)
    guest = (await api.ok("mutation { createAnonymousSession { token } }"))["createAnonymousSession"]["token"]

    assert (await api.run(CHANGE_PASSWORD, None, current="pw-olga", new="x")).codes == ["FORBIDDEN"]
    assert (await api.run(CHANGE_PASSWORD, guest, current="pw-olga", new="x")).codes == ["FORBIDDEN"]
    assert (await api.run(CHANGE_PASSWORD, token, current="pw-olga", new="")).codes == ["BAD_USER_INPUT"]
    assert (await api.run(CHANGE_PASSWORD, token, current="pw-olga", new="x" * 1025)).codes == ["BAD_USER_INPUT"]
    assert await api.login_typename("olga", "pw-olga") == "CachedSession"
