"""reauthenticate through the real app: a new token for the same session (the old one dead at once), a
fresh authenticatedAt, failures and rate limiting as login's, and who may not (guests, impersonations)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.schema.helpers import (
    ACTIVE_SESSION,
    REAUTHENTICATE,
    SESSION_EVENTS,
    admin_token,
    anonymous_token,
    create_user,
    login,
    login_token,
    set_cookies,
)
from tests.schema.service_clock import install_service_clock
from tests.services.support import FakeClock

PROOF = "query Proof($token: String!) { sessionFromToken(token: $token) { id authenticatedAt impersonatorId } }"
MY_SESSION_IDS = "query Mine { mySessions { totalItems items { id authenticatedAt } } }"
IMPERSONATE = """
mutation Impersonate($id: ID!) {
  createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "support") { token impersonatorId }
}
"""
LOGIN_FAILED_MUTATION = 'mutation { login(username: "alice", password: "wrong") { __typename } }'


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return install_service_clock(monkeypatch)


async def _alice(api: GraphQLClient, admin: str) -> str:
    user = await create_user(api, admin, "alice", verified=True)
    user_id: str = user["id"]
    return user_id


async def _reauthenticate(api: GraphQLClient, token: str | None, password: str = "pw-alice") -> GraphQLResult:
    return await api.execute(REAUTHENTICATE, {"password": password}, token=token)


async def _proof(api: GraphQLClient, token: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await api.ok(PROOF, {"token": token}))["sessionFromToken"]
    return found


async def _events(api: GraphQLClient, admin: str, user_id: str, type: str) -> list[dict[str, Any]]:
    data = await api.ok(SESSION_EVENTS, {"userId": user_id, "type": type}, token=admin)
    items: list[dict[str, Any]] = data["sessionEvents"]["items"]
    return items


async def test_a_new_token_replaces_the_old_one_at_once_and_the_proof_moves(
    api: GraphQLClient, clock: FakeClock
) -> None:
    admin = await admin_token(api)
    alice_id = await _alice(api, admin)
    old = await login_token(api, "alice", "pw-alice")
    before = await _proof(api, old)  # and cached: the rotation must reach the cache too
    assert before is not None and datetime.fromisoformat(before["authenticatedAt"]) == clock.at()

    clock.advance(120)
    result = await _reauthenticate(api, old)

    assert result.errors is None and result.data is not None
    renewed = result.data["reauthenticate"]
    assert renewed["__typename"] == "CachedSession"
    new = renewed["token"]
    assert new != old and result.response.headers["auth-token"] == new
    assert renewed["id"] == before["id"] and renewed["impersonatorId"] is None
    assert datetime.fromisoformat(renewed["authenticatedAt"]) == clock.at()
    # the old token is dead at once, as a credential and to other backends alike
    assert await _proof(api, old) is None
    assert (await api.ok(ACTIVE_SESSION, token=old))["activeSession"] is None
    assert await _proof(api, new) == {**before, "authenticatedAt": renewed["authenticatedAt"]}
    # the same session, not a second one
    mine = (await api.ok(MY_SESSION_IDS, token=new))["mySessions"]
    assert mine == {"totalItems": 1, "items": [{"id": before["id"], "authenticatedAt": renewed["authenticatedAt"]}]}
    events = await _events(api, admin, alice_id, "REAUTHENTICATED")
    assert events == [
        {"type": "REAUTHENTICATED", "sessionId": before["id"], "userId": alice_id, "actorId": None, "reason": None}
    ]


async def test_the_cookie_carries_the_new_token_with_the_lifetime_login_chose(client: GraphQLClient) -> None:
    admin = await admin_token(client)
    await _alice(client, admin)
    logged_in = await login(client, "alice", "pw-alice")  # no rememberMe: a browser-session cookie
    old = logged_in["token"]

    result = await _reauthenticate(client, None)  # the cookie is the credential

    assert result.errors is None and result.data is not None
    new = result.data["reauthenticate"]["token"]
    [cookie] = set_cookies(result.response)
    assert (cookie["_name"], cookie["_value"]) == ("session", new)
    assert "max-age" not in cookie and "expires" not in cookie
    assert (await client.ok(ACTIVE_SESSION))["activeSession"]["token"] == new
    assert await _proof(client, old) is None


async def test_a_wrong_password_is_refused_as_login_refuses_it_and_changes_nothing(
    api: GraphQLClient, clock: FakeClock
) -> None:
    admin = await admin_token(api)
    alice_id = await _alice(api, admin)
    token = await login_token(api, "alice", "pw-alice")
    proved_at = clock.at()
    clock.advance(60)

    result = await _reauthenticate(api, token, password="pw-wrong")

    assert result.errors is None and result.data is not None
    assert result.data["reauthenticate"] == {
        "__typename": "InvalidCredentialsError",
        "errorCode": "INVALID_CREDENTIALS_ERROR",
        "message": "The provided credentials are invalid",
    }
    assert "auth-token" not in result.response.headers
    still = await _proof(api, token)
    assert still is not None and datetime.fromisoformat(still["authenticatedAt"]) == proved_at
    failed = await _events(api, admin, alice_id, "LOGIN_FAILED")
    assert [(event["reason"], event["userId"]) for event in failed] == [("invalid-credentials", alice_id)]
    assert await _events(api, admin, alice_id, "REAUTHENTICATED") == []


async def test_attempts_are_limited_together_with_logins(
    make_client: ClientFactory, make_settings: SettingsFactory
) -> None:
    # four attempts per window, per identifier and per client address (every request here comes from one)
    api = await make_client(make_settings(login_rate_limit=(4, 60.0)))
    admin = await admin_token(api)  # 1
    alice_id = await _alice(api, admin)
    token = await login_token(api, "alice", "pw-alice")  # 2
    assert (await api.ok(LOGIN_FAILED_MUTATION))["login"]["__typename"] == "InvalidCredentialsError"  # 3
    wrong = await _reauthenticate(api, token, password="pw-wrong")  # 4
    assert wrong.data is not None and wrong.data["reauthenticate"]["__typename"] == "InvalidCredentialsError"

    limited = await _reauthenticate(api, token)  # 5: refused before the password is checked

    assert limited.codes == ["FORBIDDEN"] and limited.errors is not None
    extensions = limited.errors[0]["extensions"]
    assert extensions["reason"] == "RATE_LIMITED" and 1 <= extensions["retryAfter"] <= 60
    assert await _proof(api, token) is not None  # the token is unchanged
    failed = await _events(api, admin, alice_id, "LOGIN_FAILED")
    assert sorted(event["reason"] for event in failed) == ["invalid-credentials", "invalid-credentials", "rate-limited"]


async def test_guests_and_impersonated_sessions_cannot_reauthenticate(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    alice_id = await _alice(api, admin)
    made = (await api.ok(IMPERSONATE, {"id": alice_id}, token=admin))["createNewAuthenticatedSession"]
    assert made["impersonatorId"] == "1"

    for token in (None, await anonymous_token(api), made["token"]):
        result = await _reauthenticate(api, token)  # alice's right password, even
        assert result.codes == ["FORBIDDEN"], token
        assert result.errors is not None and "reason" not in result.errors[0]["extensions"]
    impersonation = await _proof(api, made["token"])
    assert impersonation is not None and impersonation["authenticatedAt"] is None
    assert await _events(api, admin, alice_id, "REAUTHENTICATED") == []


async def test_of_two_racing_reauthentications_one_wins(api: GraphQLClient) -> None:
    await _alice(api, await admin_token(api))
    old = await login_token(api, "alice", "pw-alice")

    results = await asyncio.gather(_reauthenticate(api, old), _reauthenticate(api, old))

    won = [result for result in results if result.errors is None]
    lost = [result for result in results if result.errors is not None]
    assert len(won) == 1 and len(lost) == 1 and lost[0].codes == ["FORBIDDEN"]
    assert won[0].data is not None
    assert await _proof(api, won[0].data["reauthenticate"]["token"]) is not None
    assert await _proof(api, old) is None
