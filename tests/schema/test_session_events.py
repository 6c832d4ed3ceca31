"""sessionEvents through the real app, on both backends: each change to a session recorded with its type,
reason, user and actor; who may read them; the pages; refused logins stored without letting anyone flood
the table."""

from __future__ import annotations

from typing import Any

from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.schema.helpers import (
    SUPERADMIN,
    add_item,
    admin_token,
    anonymous_token,
    create_role,
    create_user,
    login,
    login_token,
)

EVENTS = """
query Events($userId: ID, $type: SessionEventType, $options: SessionListOptions) {
  sessionEvents(userId: $userId, type: $type, options: $options) {
    totalItems items { id at type sessionId userId actorId ipAddress reason }
  }
}
"""
ACTIVE_SESSION_ID = "query Id { activeSession { id } }"
REVOKE = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"
LOGOUT = "mutation Logout { logout { success } }"
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { success }
}
"""
DELETE_USER = "mutation Delete($id: ID!) { deleteUser(id: $id) { success } }"
SELF_SESSION = """
mutation Api($id: ID!) { createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "sso") { id } }
"""
ADMIN_ID = "1"  # the bootstrapped superadmin


async def _events(api: GraphQLClient, token: str, **variables: Any) -> dict[str, Any]:
    data = await api.ok(EVENTS, variables, token=token)
    result: dict[str, Any] = data["sessionEvents"]
    return result


def _summary(events: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (item["type"], item["reason"], item["sessionId"], item["userId"], item["actorId"]) for item in events["items"]
    ]


async def _id(api: GraphQLClient, token: str) -> str:
    session_id: str = (await api.ok(ACTIVE_SESSION_ID, token=token))["activeSession"]["id"]
    return session_id


async def test_the_events_of_a_customer_tell_what_happened_in_order(api: GraphQLClient) -> None:
    # given a customer and an administrator
    admin = await admin_token(api)
    alice: str = (await create_user(api, admin, "alice", verified=True))["id"]

    # when she signs in with her guest cart, fails once, signs in on two more devices, ends one, the
    # administrator ends another, she changes her password and logs out, and she is deleted
    guest = await anonymous_token(api)
    await add_item(api, "7", 1, token=guest)
    laptop_result = await login(api, "alice", "pw-alice", token=guest)
    laptop = laptop_result["token"]
    assert (await login(api, "alice", "wrong"))["__typename"] == "InvalidCredentialsError"
    assert (await login(api, "nobody", "wrong"))["__typename"] == "InvalidCredentialsError"  # not stored
    phone, tablet = await login_token(api, "alice", "pw-alice"), await login_token(api, "alice", "pw-alice")
    laptop_id, phone_id, tablet_id = [await _id(api, token) for token in (laptop, phone, tablet)]
    assert (await api.ok(REVOKE, {"id": phone_id}, token=laptop))["revokeSession"] is True
    assert (await api.ok(REVOKE, {"id": tablet_id}, token=admin))["revokeSession"] is True
    desk = await login_token(api, "alice", "pw-alice")
    desk_id = await _id(api, desk)
    changed = await api.ok(CHANGE_PASSWORD, {"current": "pw-alice", "new": "pw-2"}, token=laptop)
    assert changed["changePassword"]["success"] is True
    await api.ok(LOGOUT, token=laptop)
    last = await login_token(api, "alice", "pw-2")
    last_id = await _id(api, last)
    await api.ok(DELETE_USER, {"id": alice}, token=admin)

    # then her events tell all of it, newest first, with who did it (even after she is gone)
    events = await _events(api, admin, userId=alice)
    assert _summary(events)[::-1] == [
        ("LOGIN", "login", laptop_id, alice, None),
        ("ORDER_MERGED", "adopted", laptop_id, alice, None),
        ("LOGIN_FAILED", "invalid-credentials", None, alice, None),
        ("LOGIN", "login", phone_id, alice, None),
        ("LOGIN", "login", tablet_id, alice, None),
        ("REVOKED", "revoked-by-owner", phone_id, alice, None),
        ("REVOKED", "revoked-by-admin", tablet_id, alice, ADMIN_ID),
        ("LOGIN", "login", desk_id, alice, None),
        ("PASSWORD_CHANGED", None, laptop_id, alice, None),
        ("REVOKED", "password-changed", desk_id, alice, None),
        ("LOGOUT", "logout", laptop_id, alice, None),
        ("LOGIN", "login", last_id, alice, None),
        ("REVOKED", "user-deleted", last_id, alice, ADMIN_ID),
    ]
    assert events["totalItems"] == 13
    assert {item["ipAddress"] for item in events["items"]} == {"127.0.0.0"}  # truncated, as sessions keep it
    times = [item["at"] for item in events["items"]]
    assert times == sorted(times, reverse=True)


async def test_filters_combine_and_an_unknown_user_has_no_events(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    alice: str = (await create_user(api, admin, "alice", verified=True))["id"]
    await login_token(api, "alice", "pw-alice")
    await login(api, "alice", "wrong")
    made = (await api.ok(SELF_SESSION, {"id": ADMIN_ID}, token=admin))["createNewAuthenticatedSession"]["id"]

    assert _summary(await _events(api, admin, userId=alice, type="LOGIN_FAILED")) == [
        ("LOGIN_FAILED", "invalid-credentials", None, alice, None)
    ]
    admin_logins = await _events(api, admin, userId=ADMIN_ID, type="LOGIN")
    assert _summary(admin_logins)[0] == ("LOGIN", "api", made, ADMIN_ID, None)  # for oneself: reason "api"
    assert [item["userId"] for item in (await _events(api, admin, type="LOGIN"))["items"]] == [
        ADMIN_ID,
        alice,
        ADMIN_ID,
    ]
    for unknown in ("999", "2147483647", "99999999999999"):
        assert await _events(api, admin, userId=unknown) == {"totalItems": 0, "items": []}, unknown
    assert (await api.execute(EVENTS, {"userId": "abc"}, token=admin)).codes == ["BAD_USER_INPUT"]


async def test_session_events_need_read_session(api: GraphQLClient) -> None:
    # given a customer, a guest, a user one permission short and a support agent
    admin = await admin_token(api)
    await create_user(api, admin, "alice", verified=True)
    short = await create_role(api, admin, "short", ["DeleteSession", "ReadUser", "ImpersonateUser"], ["1"])
    support = await create_role(api, admin, "support", ["ReadSession"], ["1"])
    await create_user(api, admin, "short", verified=True, roleIds=[short["id"]])
    await create_user(api, admin, "desk", verified=True, roleIds=[support["id"]])

    # then only ReadSession reads the events
    for token in (None, await anonymous_token(api), await login_token(api, "alice", "pw-alice")):
        assert (await api.execute(EVENTS, {}, token=token)).codes == ["FORBIDDEN"]
    assert (await api.execute(EVENTS, {}, token=await login_token(api, "short", "pw-short"))).codes == ["FORBIDDEN"]
    desk = await login_token(api, "desk", "pw-desk")
    assert (await _events(api, desk, type="LOGIN"))["totalItems"] == 4  # superadmin, alice, short, desk


async def test_pages_are_bounded(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_user(api, admin, "alice", verified=True)
    for _ in range(3):
        await login_token(api, "alice", "pw-alice")
    every = await _events(api, admin, type="LOGIN")
    ids = [item["id"] for item in every["items"]]

    page = await _events(api, admin, type="LOGIN", options={"skip": 1, "take": 2})
    assert (page["totalItems"], [item["id"] for item in page["items"]]) == (4, ids[1:3])
    assert await _events(api, admin, type="LOGIN", options={"skip": 4, "take": 100}) == {"totalItems": 4, "items": []}
    assert [int(item) for item in ids] == sorted((int(item) for item in ids), reverse=True)
    for options in ({"take": 0}, {"take": 101}, {"skip": -1}):
        assert (await api.execute(EVENTS, {"options": options}, token=admin)).codes == ["BAD_USER_INPUT"], options


async def test_rate_limited_logins_are_stored_once_per_window(
    make_client: ClientFactory, make_settings: SettingsFactory
) -> None:
    # given a limit of three attempts a minute (per identifier and per address)
    api = await make_client(make_settings(login_rate_limit=(3, 60.0)))
    admin = await login_token(api, *SUPERADMIN)  # the address's first attempt
    alice: str = (await create_user(api, admin, "alice", verified=True))["id"]

    # when alice's password is tried five times, and an unknown identifier twice
    outcomes = [_refusal(await api.execute(*_attempt("alice"))) for _ in range(5)]
    outcomes += [_refusal(await api.execute(*_attempt("nobody"))) for _ in range(2)]

    # then two were refused as wrong and five by the limiter, but one refusal alone is stored
    assert outcomes == [None, None] + ["RATE_LIMITED"] * 5
    assert _summary(await _events(api, admin, type="LOGIN_FAILED")) == [
        ("LOGIN_FAILED", "rate-limited", None, alice, None),
        ("LOGIN_FAILED", "invalid-credentials", None, alice, None),
        ("LOGIN_FAILED", "invalid-credentials", None, alice, None),
    ]


def _attempt(username: str) -> tuple[str, dict[str, Any]]:
    return ('mutation L($u: String!) { login(username: $u, password: "wrong") { __typename } }', {"u": username})


def _refusal(result: GraphQLResult) -> str | None:
    """The limiter's reason when it refused the attempt, else None."""
    reasons = [error.get("extensions", {}).get("reason") for error in result.errors or []]
    return reasons[0] if reasons else None


async def test_a_login_beyond_the_cap_ends_the_oldest_session_at_once(
    make_client: ClientFactory, make_settings: SettingsFactory
) -> None:
    # given alice at a cap of two live sessions, the oldest one just used (so cached)
    api = await make_client(make_settings(session_limit_per_user=2))
    admin = await admin_token(api)
    alice: str = (await create_user(api, admin, "alice", verified=True))["id"]
    oldest, newer = await login_token(api, "alice", "pw-alice"), await login_token(api, "alice", "pw-alice")
    oldest_id = await _id(api, oldest)

    # when she logs in once more
    newest = await login_token(api, "alice", "pw-alice")

    # then the oldest token stops working at once, the others work, and the end is recorded
    assert (await api.ok(ACTIVE_SESSION_ID, token=oldest))["activeSession"] is None
    for token in (newer, newest):
        assert (await api.ok(ACTIVE_SESSION_ID, token=token))["activeSession"] is not None
    revoked = await _events(api, admin, userId=alice, type="REVOKED")
    assert _summary(revoked) == [("REVOKED", "session-limit", oldest_id, alice, None)]


async def test_an_impersonation_neither_counts_toward_the_cap_nor_ends_the_customers_sessions(
    make_client: ClientFactory, make_settings: SettingsFactory
) -> None:
    # given alice at a cap of two live sessions, both used
    api = await make_client(make_settings(session_limit_per_user=2))
    admin = await admin_token(api)
    alice: str = (await create_user(api, admin, "alice", verified=True))["id"]
    own = [await login_token(api, "alice", "pw-alice"), await login_token(api, "alice", "pw-alice")]

    # when the support desk impersonates her twice
    for _ in range(2):
        await api.ok(SELF_SESSION, {"id": alice}, token=admin)  # for another user: an impersonation

    # then both of her own sessions still work, nothing was ended by the cap, and her next login still
    # ends only her own oldest session
    for token in own:
        assert (await api.ok(ACTIVE_SESSION_ID, token=token))["activeSession"] is not None
    assert _summary(await _events(api, admin, userId=alice, type="REVOKED")) == []
    await login_token(api, "alice", "pw-alice")
    assert (await api.ok(ACTIVE_SESSION_ID, token=own[0]))["activeSession"] is None
    assert (await api.ok(ACTIVE_SESSION_ID, token=own[1]))["activeSession"] is not None
