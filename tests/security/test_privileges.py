"""Nobody grants what they do not hold, and nobody changes the SuperAdmin role or demotes the superadmin.

Through the real app, as the attacks were mounted: a user whose role holds a few administrative
permissions tries to raise that role, grant more through a new role or a role given to a user, move
a role onto another channel, act on (or as) a user who holds more, or strip the superadmin. The login
limiter is switched off: these tests log in often and are not about it.
"""

from __future__ import annotations

import http.cookiejar
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
  login(username: $username, password: $password) { __typename ... on CachedSession { token user { id } } }
}
"""
PERMISSIONS = "query Permissions { activeSession { user { channelPermissions { id permissions } } } }"
ACTIVE_CHANNEL = "query ActiveChannel { activeChannel { id } }"
CREATE_CHANNEL = "mutation CreateChannel($code: String!) { createChannel(input: {code: $code}) { id } }"
CREATE_ROLE = "mutation CreateRole($input: CreateRoleInput!) { createRole(input: $input) { id permissions } }"
UPDATE_ROLE = """
mutation UpdateRole($input: UpdateRoleInput!) {
  updateRole(input: $input) { id description permissions channels { id } }
}
"""
CREATE_USER = "mutation CreateUser($input: CreateUserInput!) { createUser(input: $input) { id roles { code } } }"
UPDATE_USER = """
mutation UpdateUser($input: UpdateUserInput!) { updateUser(input: $input) { id identifier verified roles { id code } } }
"""
DELETE_USER = "mutation DeleteUser($id: ID!) { deleteUser(id: $id) { success } }"
IMPERSONATE = """
mutation Impersonate($id: ID!) { createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "x") { id } }
"""
SUPER_ADMIN_ROLE_CODE = "__super_admin_role__"


class Admin:
    """The app through a client that keeps no cookies, logged in as the superadmin."""

    def __init__(self, client: GraphQLClient) -> None:
        self.client = client
        self.token = ""
        self.user_id = ""
        self.super_admin_role_id = ""
        self.default_channel = ""

    async def start(self) -> Admin:
        self.token, self.user_id = await self.login(*SUPERADMIN)
        roles = (await self.ok(UPDATE_USER, input={"id": self.user_id}))["updateUser"]["roles"]
        self.super_admin_role_id = next(role["id"] for role in roles if role["code"] == SUPER_ADMIN_ROLE_CODE)
        self.default_channel = (await self.ok(ACTIVE_CHANNEL))["activeChannel"]["id"]
        return self

    async def run(self, query: str, token: str | None = None, **variables: Any) -> GraphQLResult:
        return await self.client.execute(query, variables, token=self.token if token is None else token)

    async def ok(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        result = await self.run(query, token, **variables)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data

    async def login(self, username: str, password: str) -> tuple[str, str]:
        result = await self.client.execute(LOGIN, {"username": username, "password": password})
        assert result.data is not None, result.errors
        session = result.data["login"]
        assert session["__typename"] == "CachedSession", session
        return session["token"], session["user"]["id"]

    async def role(self, code: str, permissions: list[str], channel_ids: list[str]) -> str:
        role_input = {"code": code, "permissions": permissions, "channelIds": channel_ids}
        role_id: str = (await self.ok(CREATE_ROLE, input=role_input))["createRole"]["id"]
        return role_id

    async def user(self, identifier: str, permissions: list[str], channel_ids: list[str] | None = None) -> User:
        """A user with one role of their own holding `permissions` (on the default channel unless given)."""
        role_id = await self.role(f"{identifier}-role", permissions, channel_ids or [self.default_channel])
        user_input = {"identifier": identifier, "password": f"pw-{identifier}", "roleIds": [role_id]}
        user_id = (await self.ok(CREATE_USER, input=user_input))["createUser"]["id"]
        token, _ = await self.login(identifier, f"pw-{identifier}")
        return User(self, user_id, role_id, token)

    async def channel(self, code: str) -> str:
        channel_id: str = (await self.ok(CREATE_CHANNEL, code=code))["createChannel"]["id"]
        return channel_id


class User:
    def __init__(self, admin: Admin, user_id: str, role_id: str, token: str) -> None:
        self.admin = admin
        self.id = user_id
        self.role_id = role_id
        self.token = token

    async def run(self, query: str, **variables: Any) -> list[str]:
        """The error codes of the operation run as this user ([] when it succeeded)."""
        return (await self.admin.run(query, self.token, **variables)).codes

    async def permissions(self) -> list[dict[str, Any]]:
        data = await self.admin.ok(PERMISSIONS, self.token)
        permissions: list[dict[str, Any]] = data["activeSession"]["user"]["channelPermissions"]
        return permissions


@pytest.fixture
async def admin(make_settings: SettingsFactory, make_client: MakeClient) -> Admin:
    client: GraphQLClient = await make_client(make_settings(login_rate_limit=None))
    client.http.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return await Admin(client).start()


# -- updateRole: the escalation of issue 7 ------------------------------------------------------------


async def test_a_role_holding_update_role_cannot_be_raised_by_its_holder(admin: Admin) -> None:
    # given a user whose role holds only UpdateRole and CreateUser
    eve = await admin.user("eve", ["UpdateRole", "CreateUser"])

    # when they raise their own role to SuperAdmin, or to a permission they lack
    to_super_admin = await eve.run(UPDATE_ROLE, input={"id": eve.role_id, "permissions": ["SuperAdmin"]})
    to_more = await eve.run(
        UPDATE_ROLE, input={"id": eve.role_id, "permissions": ["UpdateRole", "CreateUser", "CreateChannel"]}
    )

    # then both are refused, and they hold what they held
    assert (to_super_admin, to_more) == (["BAD_USER_INPUT"], ["FORBIDDEN"])
    assert await eve.permissions() == [{"id": admin.default_channel, "permissions": ["CreateUser", "UpdateRole"]}]
    assert await eve.run(CREATE_CHANNEL, code="eve-1") == ["FORBIDDEN"]


async def test_nobody_changes_the_super_admin_role_not_even_the_superadmin(admin: Admin) -> None:
    eve = await admin.user("eve", ["UpdateRole", "CreateUser"])
    changes: list[dict[str, Any]] = [
        {"permissions": []},
        {"permissions": ["ReadOrder"]},
        {"channelIds": []},
        {"description": "mine now"},
    ]

    by_eve = [await eve.run(UPDATE_ROLE, input={"id": admin.super_admin_role_id, **c}) for c in changes]
    by_superadmin = [
        (await admin.run(UPDATE_ROLE, input={"id": admin.super_admin_role_id, **c})).codes for c in changes
    ]

    assert by_eve == [["FORBIDDEN"]] * 4
    assert by_superadmin == [["FORBIDDEN"]] * 4
    assert (await admin.run(CREATE_CHANNEL, code="still-allowed")).errors is None


async def test_the_super_admin_permission_is_granted_to_no_role(admin: Admin) -> None:
    role_input = {"code": "second-super", "permissions": ["SuperAdmin"], "channelIds": [admin.default_channel]}
    buyer = await admin.role("buyer", ["ReadOrder"], [admin.default_channel])

    created = await admin.run(CREATE_ROLE, input=role_input)
    updated = await admin.run(UPDATE_ROLE, input={"id": buyer, "permissions": ["ReadOrder", "SuperAdmin"]})

    assert (created.codes, updated.codes) == (["BAD_USER_INPUT"], ["BAD_USER_INPUT"])


# -- createRole / updateRole: grant only what one holds, on every channel concerned -------------------


async def test_create_role_grants_only_what_the_caller_holds_on_every_channel_of_the_role(admin: Admin) -> None:
    rob = await admin.user("rob", ["CreateRole", "ReadOrder"])
    eu = await admin.channel("eu")
    default = admin.default_channel

    def role(code: str, permissions: list[str], channel_ids: list[str]) -> dict[str, Any]:
        return {"input": {"code": code, "permissions": permissions, "channelIds": channel_ids}}

    held = await rob.run(CREATE_ROLE, **role("reader", ["ReadOrder"], [default]))
    not_held = await rob.run(CREATE_ROLE, **role("deleter", ["ReadOrder", "DeleteUser"], [default]))
    other_channel = await rob.run(CREATE_ROLE, **role("eu-reader", ["ReadOrder"], [default, eu]))
    empty_on_other_channel = await rob.run(CREATE_ROLE, **role("eu-nothing", [], [eu]))

    assert (held, not_held, other_channel, empty_on_other_channel) == ([], ["FORBIDDEN"], ["FORBIDDEN"], ["FORBIDDEN"])


async def test_update_role_changes_only_roles_within_what_the_caller_holds(admin: Admin) -> None:
    uma = await admin.user("uma", ["UpdateRole", "ReadOrder"])
    eu = await admin.channel("eu")
    default = admin.default_channel
    buyer = await admin.role("buyer", ["ReadOrder"], [default])
    deleter = await admin.role("deleter", ["DeleteUser"], [default])

    moved_to_eu = await uma.run(UPDATE_ROLE, input={"id": buyer, "channelIds": [default, eu]})
    stripped = await uma.run(UPDATE_ROLE, input={"id": deleter, "permissions": []})
    described = await uma.run(UPDATE_ROLE, input={"id": deleter, "description": "renamed"})
    within = await uma.run(UPDATE_ROLE, input={"id": buyer, "permissions": [], "description": "emptied"})

    assert (moved_to_eu, stripped, described, within) == (["FORBIDDEN"], ["FORBIDDEN"], ["FORBIDDEN"], [])


# -- createUser / updateUser: giving a role is granting -----------------------------------------------


async def test_giving_a_user_a_role_grants_it_so_needs_what_the_role_holds(admin: Admin) -> None:
    carl = await admin.user("carl", ["CreateUser", "UpdateUser"])
    deleter = await admin.role("deleter", ["DeleteUser"], [admin.default_channel])

    def new_user(identifier: str, role_ids: list[str]) -> dict[str, Any]:
        return {"input": {"identifier": identifier, "password": "pw", "roleIds": role_ids}}

    super_admin_user = await carl.run(CREATE_USER, **new_user("mallory", [admin.super_admin_role_id]))
    deleter_user = await carl.run(CREATE_USER, **new_user("mallory", [deleter]))
    self_raised = await carl.run(UPDATE_USER, input={"id": carl.id, "roleIds": [carl.role_id, deleter]})
    same_role = await carl.run(CREATE_USER, **new_user("mallory", [carl.role_id]))

    assert (super_admin_user, deleter_user, self_raised, same_role) == (["FORBIDDEN"], ["FORBIDDEN"], ["FORBIDDEN"], [])
    assert await carl.permissions() == [{"id": admin.default_channel, "permissions": ["CreateUser", "UpdateUser"]}]


async def test_a_user_who_holds_more_is_out_of_reach(admin: Admin) -> None:
    dana = await admin.user("dana", ["UpdateUser", "DeleteUser", "ImpersonateUser"])
    plain = (await admin.ok(CREATE_USER, input={"identifier": "plain", "password": "pw-plain"}))["createUser"]["id"]
    target = admin.user_id

    on_superadmin = [
        await dana.run(UPDATE_USER, input={"id": target, "password": "taken-over"}),
        await dana.run(UPDATE_USER, input={"id": target, "identifier": "someone"}),
        await dana.run(IMPERSONATE, id=target),
        await dana.run(DELETE_USER, id=target),
    ]
    on_plain = [
        await dana.run(UPDATE_USER, input={"id": plain, "password": "pw-2"}),
        await dana.run(IMPERSONATE, id=plain),
        await dana.run(DELETE_USER, id=plain),
    ]

    assert on_superadmin == [["FORBIDDEN"]] * 4
    assert on_plain == [[], [], []]
    await admin.login(*SUPERADMIN)


# -- the superadmin user ------------------------------------------------------------------------------


async def test_the_superadmin_is_never_deleted_unverified_or_stripped_of_its_role(admin: Admin) -> None:
    # even by itself, or by another holder of the SuperAdmin role
    sam_input = {"identifier": "sam", "password": "pw-sam", "roleIds": [admin.super_admin_role_id]}
    await admin.ok(CREATE_USER, input=sam_input)
    sam, _ = await admin.login("sam", "pw-sam")
    buyer = await admin.role("buyer", ["ReadOrder"], [admin.default_channel])
    attempts: list[tuple[str, dict[str, Any]]] = [
        (DELETE_USER, {"id": admin.user_id}),
        (UPDATE_USER, {"input": {"id": admin.user_id, "roleIds": []}}),
        (UPDATE_USER, {"input": {"id": admin.user_id, "roleIds": [buyer]}}),
        (UPDATE_USER, {"input": {"id": admin.user_id, "verified": False}}),
    ]

    by_itself = [(await admin.run(query, **variables)).codes for query, variables in attempts]
    by_sam = [(await admin.run(query, sam, **variables)).codes for query, variables in attempts]

    assert by_itself == [["FORBIDDEN"]] * 4
    assert by_sam == [["FORBIDDEN"]] * 4
    # what leaves it the superadmin is allowed
    kept = await admin.ok(
        UPDATE_USER, input={"id": admin.user_id, "identifier": "root", "roleIds": [admin.super_admin_role_id, buyer]}
    )
    assert kept["updateUser"] == {
        "id": admin.user_id,
        "identifier": "root",
        "verified": True,
        "roles": [{"id": admin.super_admin_role_id, "code": SUPER_ADMIN_ROLE_CODE}, {"id": buyer, "code": "buyer"}],
    }
    assert (await admin.run(CREATE_CHANNEL, code="after-rename")).errors is None
