"""createNewAuthenticatedSession for another user (an impersonation) through the real app: nothing taken
from the administrator's session, a lifetime capped however active, no escalation, visible to and
endable by the customer, recorded with the administrator as actor, and ended with the administrator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from models import Order, Session
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    SESSION_EVENTS,
    SUPERADMIN,
    add_item,
    admin_token,
    create_channel,
    create_role,
    create_user,
    login_token,
)
from tests.schema.service_clock import install_service_clock
from tests.services.support import FakeClock

IMPERSONATE = """
mutation Impersonate($id: ID!) {
  createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "support") {
    id token expires activeOrderId authenticatedAt impersonatorId user { id }
  }
}
"""
SESSION = "query Session { activeSession { id expires activeOrderId } }"
FROM_TOKEN = "query FromToken($token: String!) { sessionFromToken(token: $token) { id expires } }"
ACTIVE_ORDER = "query ActiveOrder { activeOrder { id userId lines { productVariantId quantity } } }"
MY_SESSIONS = "query Mine { mySessions { totalItems items { id current authenticatedAt impersonatorId expires } } }"
REVOKE = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"
DELETE_USER = "mutation DeleteUser($id: ID!) { deleteUser(id: $id) { success } }"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return install_service_clock(monkeypatch)


async def _user(api: GraphQLClient, admin: str, name: str, **fields: Any) -> str:
    user_id: str = (await create_user(api, admin, name, verified=True, **fields))["id"]
    return user_id


async def _impersonate(api: GraphQLClient, admin: str, user_id: str) -> dict[str, Any]:
    made: dict[str, Any] = (await api.ok(IMPERSONATE, {"id": user_id}, token=admin))["createNewAuthenticatedSession"]
    return made


async def _alive(api: GraphQLClient, token: str) -> dict[str, Any] | None:
    """The session as its own credential sees it (which slides it when due), or None."""
    found: dict[str, Any] | None = (await api.ok(SESSION, token=token))["activeSession"]
    return found


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_administrators_session_and_its_cart_stay_where_they_are(
    api: GraphQLClient, clock: FakeClock
) -> None:
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    # a guest's cart, which the administrator's session holds too (no operation lets a logged-in session
    # pick up a guest order, so it is put there in the database; the merge at login would take it)
    guest = (await add_item(api, "v1", 2)).response.headers["auth-token"]
    guest_order = await Order.get(user_id=None)
    admin_session = (await _alive(api, admin) or {})["id"]
    await Session.filter(id=int(admin_session)).update(active_order_id=guest_order.id)
    clock.advance(301)  # past SESSION_CACHE_TTL: the administrator's request reads the row

    made = await _impersonate(api, admin, alice_id)

    assert made["activeOrderId"] is None and made["user"] == {"id": alice_id}
    assert (await _alive(api, admin) or {})["activeOrderId"] == str(guest_order.id)
    assert await _alive(api, guest) is not None  # the guest's session was not ended as a login would end it
    cart = (await api.ok(ACTIVE_ORDER, token=guest))["activeOrder"]
    assert cart == {"id": str(guest_order.id), "userId": None, "lines": [{"productVariantId": "v1", "quantity": 2}]}
    assert (await api.ok(ACTIVE_ORDER, token=made["token"]))["activeOrder"] is None


async def test_an_impersonation_ends_an_hour_after_it_began_however_active(
    api: GraphQLClient, clock: FakeClock
) -> None:
    admin = await admin_token(api)
    made = await _impersonate(api, admin, await _user(api, admin, "alice"))
    began = clock.at()
    assert _at(made["expires"]) == clock.at(3600)

    clock.advance(1800)  # half-way, and far past the point where a year-long session slides
    assert _at((await _alive(api, made["token"]) or {})["expires"]) == clock.at(1800)
    clock.advance(1799)
    assert await _alive(api, made["token"]) is not None
    clock.advance(2)

    assert await _alive(api, made["token"]) is None
    assert (await api.ok(FROM_TOKEN, {"token": made["token"]}))["sessionFromToken"] is None
    assert clock.at() > began


async def test_sliding_renewal_never_takes_an_impersonation_past_its_maximum_lifetime(
    make_client: ClientFactory, make_settings: SettingsFactory, clock: FakeClock
) -> None:
    api = await make_client(make_settings(session_duration=60.0, impersonation_max_lifetime=120.0))
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    own = await login_token(api, "alice", "pw-alice")
    made = await _impersonate(api, admin, alice_id)
    assert _at(made["expires"]) == clock.at(60)

    clock.advance(40)  # half of SESSION_DURATION left: both slide, the impersonation within its cap
    assert _at((await _alive(api, made["token"]) or {})["expires"]) == clock.at(60)
    assert _at((await _alive(api, own) or {})["expires"]) == clock.at(60)
    clock.advance(50)  # 90 s in: a full duration would reach 150 s, the cap stops it at 120 s
    assert _at((await _alive(api, made["token"]) or {})["expires"]) == clock.at(30)
    assert _at((await _alive(api, own) or {})["expires"]) == clock.at(60)
    clock.advance(29)
    assert await _alive(api, made["token"]) is not None
    clock.advance(2)  # 121 s in

    assert await _alive(api, made["token"]) is None
    assert await _alive(api, own) is not None  # the customer's own session is not capped


async def test_no_one_impersonates_a_user_holding_a_permission_they_lack(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    uk = await create_channel(api, admin, "uk")
    await create_role(api, admin, "desk", ["ImpersonateUser", "ReadOrder"], ["1"])  # role 2
    await create_role(api, admin, "orders", ["ReadOrder"], ["1"])  # role 3
    await create_role(api, admin, "uk-orders", ["ReadOrder"], [uk["id"]])  # role 4
    await create_role(api, admin, "deleters", ["DeleteUser"], ["1"])  # role 5
    await _user(api, admin, "desk", roleIds=["2"])
    within = {"alice": await _user(api, admin, "alice"), "carol": await _user(api, admin, "carol", roleIds=["3"])}
    beyond = {
        "on another channel": await _user(api, admin, "dave", roleIds=["4"]),
        "a permission the desk lacks": await _user(api, admin, "erin", roleIds=["5"]),
        "the superadmin": "1",
    }
    desk = await login_token(api, "desk", "pw-desk")

    for name, user_id in beyond.items():
        refused = await api.execute(IMPERSONATE, {"id": user_id}, token=desk)
        assert refused.codes == ["FORBIDDEN"], name
    for name, user_id in within.items():
        assert (await _impersonate(api, desk, user_id))["impersonatorId"] == "2", name
    # a SuperAdmin holds every permission: they may impersonate anyone
    assert (await _impersonate(api, admin, beyond["a permission the desk lacks"]))["impersonatorId"] == "1"


async def test_the_customer_sees_the_impersonation_and_may_end_it(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    laptop = await login_token(api, "alice", "pw-alice")
    made = await _impersonate(api, admin, alice_id)

    mine = (await api.ok(MY_SESSIONS, token=laptop))["mySessions"]

    assert mine["totalItems"] == 2
    impersonation = next(item for item in mine["items"] if item["id"] == made["id"])
    assert impersonation["impersonatorId"] == "1" and impersonation["authenticatedAt"] is None
    assert impersonation["current"] is False and impersonation["expires"] == made["expires"]
    assert made["impersonatorId"] == "1" and made["authenticatedAt"] is None
    assert await api.ok(REVOKE, {"id": made["id"]}, token=laptop) == {"revokeSession": True}
    assert await _alive(api, made["token"]) is None
    assert (await api.ok(MY_SESSIONS, token=laptop))["mySessions"]["totalItems"] == 1


async def test_recorded_as_impersonation_started_by_the_administrator_and_a_session_for_oneself_as_login(
    api: GraphQLClient,
) -> None:
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    made = await _impersonate(api, admin, alice_id)
    own = await _impersonate(api, admin, "1")
    assert own["impersonatorId"] is None

    alices = (await api.ok(SESSION_EVENTS, {"userId": alice_id}, token=admin))["sessionEvents"]["items"]
    admins = (await api.ok(SESSION_EVENTS, {"userId": "1", "type": "LOGIN"}, token=admin))["sessionEvents"]["items"]

    assert alices == [
        {"type": "IMPERSONATION_STARTED", "sessionId": made["id"], "userId": alice_id, "actorId": "1", "reason": None}
        | {"reason": alices[0]["reason"]}
    ]
    assert [event["type"] for event in alices] == ["IMPERSONATION_STARTED"]  # no LOGIN for it
    assert {"type": "LOGIN", "sessionId": own["id"], "userId": "1", "actorId": None, "reason": "api"} in admins


async def test_deleting_the_administrator_ends_the_sessions_they_opened_as_others(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    alice_id = await _user(api, admin, "alice")
    await create_role(api, admin, "support", ["ImpersonateUser"], ["1"])
    support_id = await _user(api, admin, "support", roleIds=["2"])
    laptop = await login_token(api, "alice", "pw-alice")
    made = await _impersonate(api, await login_token(api, "support", "pw-support"), alice_id)
    assert await _alive(api, made["token"]) is not None

    deleted = await api.ok(DELETE_USER, {"id": support_id}, token=await login_token(api, *SUPERADMIN))

    assert deleted == {"deleteUser": {"success": True}}
    assert await _alive(api, made["token"]) is None  # never left behind without its impersonator (and its cap)
    assert await _alive(api, laptop) is not None
