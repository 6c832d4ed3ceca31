"""The operations that demand a fresh proof, through the real app: allowed while the caller's password proof
is at most SESSION_FRESH_AGE old, refused a second later (FORBIDDEN, reason FRESH_AUTHENTICATION_REQUIRED);
the permission checked first; sessions with no proof; acting on oneself needs none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from server.settings import Settings
from tests.graphql import GraphQLClient, GraphQLResult
from tests.schema.helpers import (
    REAUTHENTICATE,
    SESSION_FROM_TOKEN,
    SUPERADMIN,
    admin_token,
    anonymous_token,
    create_role,
    create_user,
    login_token,
)
from tests.schema.service_clock import install_service_clock
from tests.services.support import FakeClock

FRESH_AGE = Settings().session_fresh_age
CREATE_FOR = """
mutation CreateFor($id: ID!) {
  createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "sso") { token authenticatedAt }
}
"""
CHANGE_PASSWORD = """
mutation ChangePassword($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { success }
}
"""
DELETE_USER = "mutation DeleteUser($id: ID!) { deleteUser(id: $id) { success } }"
REVOKE = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"
DELETE_SESSIONS_BY_USER = "mutation DeleteSessionsByUser($userId: ID!) { deleteSessionsByUser(userId: $userId) }"
SESSION_ID = "query SessionId { activeSession { id } }"
OPERATIONS = (
    "createNewAuthenticatedSession",
    "changePassword",
    "deleteUser",
    "revokeSession",
    "deleteSessionsByUser",
)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return install_service_clock(monkeypatch)


@dataclass
class Shop:
    """A superadmin's token (for setting things up) and a customer, alice, with a session of her own."""

    admin: str
    alice_id: str
    alice: str
    #: the target of an operation, made at its first attempt: a refused attempt must leave it for the next
    targets: dict[str, str] = field(default_factory=dict)


async def _shop(api: GraphQLClient) -> Shop:
    admin = await admin_token(api)
    alice = await create_user(api, admin, "alice", verified=True)
    return Shop(admin, alice["id"], await login_token(api, "alice", "pw-alice"))


async def _caller(api: GraphQLClient, operation: str) -> str:
    """A new session, proved now, of whoever performs `operation`: alice changes her own password, the
    superadmin does the rest."""
    if operation == "changePassword":
        return await login_token(api, "alice", "pw-alice")
    return await login_token(api, *SUPERADMIN)


async def _session_id(api: GraphQLClient, token: str) -> str:
    session_id: str = (await api.ok(SESSION_ID, token=token))["activeSession"]["id"]
    return session_id


async def _attempt(api: GraphQLClient, operation: str, caller: str, shop: Shop) -> GraphQLResult:
    """`operation` on its target, whose effect the result shows (success, count, token)."""
    if operation == "createNewAuthenticatedSession":
        return await api.execute(CREATE_FOR, {"id": shop.alice_id}, token=caller)
    if operation == "changePassword":
        return await api.execute(CHANGE_PASSWORD, {"current": "pw-alice", "new": "pw-alice"}, token=caller)
    if operation == "deleteUser":
        if operation not in shop.targets:
            shop.targets[operation] = (await create_user(api, shop.admin, "bob"))["id"]
        return await api.execute(DELETE_USER, {"id": shop.targets[operation]}, token=caller)
    if operation == "revokeSession":
        if operation not in shop.targets:
            shop.targets[operation] = await _session_id(api, await login_token(api, "alice", "pw-alice"))
        return await api.execute(REVOKE, {"id": shop.targets[operation]}, token=caller)
    assert operation == "deleteSessionsByUser"
    return await api.execute(DELETE_SESSIONS_BY_USER, {"userId": shop.alice_id}, token=caller)


def _did_its_work(result: GraphQLResult) -> bool:
    assert result.errors is None, result.errors
    assert result.data is not None
    [value] = result.data.values()
    if isinstance(value, dict):
        return bool(value.get("success", value.get("token")))
    return bool(value)


def _refused_for_freshness(result: GraphQLResult) -> bool:
    assert result.errors is not None and len(result.errors) == 1, result.errors
    return bool(result.errors[0]["extensions"] == {"code": "FORBIDDEN", "reason": "FRESH_AUTHENTICATION_REQUIRED"})


def _plainly_forbidden(result: GraphQLResult) -> bool:
    assert result.errors is not None and len(result.errors) == 1, result.errors
    return bool(result.errors[0]["extensions"] == {"code": "FORBIDDEN"})


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_proof_is_fresh_up_to_the_fresh_age_and_stale_a_second_later(
    api: GraphQLClient, clock: FakeClock, operation: str
) -> None:
    shop = await _shop(api)

    # a second past SESSION_FRESH_AGE: refused, and nothing done (the same attempt succeeds below)
    stale = await _caller(api, operation)
    clock.advance(FRESH_AGE + 1)
    refused = await _attempt(api, operation, stale, shop)
    assert _refused_for_freshness(refused), refused.errors
    assert refused.data is None

    # exactly SESSION_FRESH_AGE old: still fresh
    fresh = await _caller(api, operation)
    clock.advance(FRESH_AGE)
    assert _did_its_work(await _attempt(api, operation, fresh, shop)), operation


async def test_a_caller_short_of_the_permission_is_refused_without_a_hint_to_reauthenticate(
    api: GraphQLClient, clock: FakeClock
) -> None:
    shop = await _shop(api)
    await create_role(api, shop.admin, "desk", ["ReadSession", "ReadUser"], ["1"])
    await create_user(api, shop.admin, "desk", verified=True, roleIds=["2"])
    alice_session = await _session_id(api, shop.alice)
    for proof_age in (0, FRESH_AGE + 1):  # with a fresh proof and with a stale one alike
        desk = await login_token(api, "desk", "pw-desk")
        clock.advance(proof_age)
        for query, variables in (
            (CREATE_FOR, {"id": shop.alice_id}),
            (DELETE_USER, {"id": shop.alice_id}),
            (DELETE_SESSIONS_BY_USER, {"userId": shop.alice_id}),
        ):
            assert _plainly_forbidden(await api.execute(query, variables, token=desk)), (query, proof_age)
        # another user's session id is answered as one that names nothing
        assert await api.ok(REVOKE, {"id": alice_session}, token=desk) == {"revokeSession": False}
    guest = await anonymous_token(api)
    changed = await api.execute(CHANGE_PASSWORD, {"current": "x", "new": "y"}, token=guest)
    assert _plainly_forbidden(changed)
    assert (await api.ok(SESSION_FROM_TOKEN, {"token": shop.alice}))["sessionFromToken"] is not None


async def test_acting_on_ones_own_sessions_needs_no_fresh_proof(api: GraphQLClient, clock: FakeClock) -> None:
    shop = await _shop(api)
    phone = await login_token(api, "alice", "pw-alice")
    clock.advance(FRESH_AGE * 3)

    assert await api.ok(REVOKE, {"id": await _session_id(api, phone)}, token=shop.alice) == {"revokeSession": True}
    ended = await api.ok(DELETE_SESSIONS_BY_USER, {"userId": shop.alice_id}, token=shop.alice)
    assert ended == {"deleteSessionsByUser": 1}


async def test_a_session_made_by_the_api_has_no_proof_until_it_reauthenticates(api: GraphQLClient) -> None:
    shop = await _shop(api)
    made: dict[str, Any] = (await api.ok(CREATE_FOR, {"id": "1"}, token=shop.admin))["createNewAuthenticatedSession"]
    assert made["authenticatedAt"] is None  # the superadmin's own session, made by the API: no proof in it
    bob = await create_user(api, shop.admin, "bob")

    assert _refused_for_freshness(await api.execute(DELETE_USER, {"id": bob["id"]}, token=made["token"]))

    proved = await api.ok(REAUTHENTICATE, {"password": SUPERADMIN[1]}, token=made["token"])
    renewed = proved["reauthenticate"]["token"]
    assert await api.ok(DELETE_USER, {"id": bob["id"]}, token=renewed) == {"deleteUser": {"success": True}}
