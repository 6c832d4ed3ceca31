"""The support desk's story, on a live server (`python -m server`) on each backend: a customer signs in
on two devices, lists them and ends one; an administrator impersonates the customer, who sees it and
ends it; the event list tells all of it, in order, with who did what."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import live_server

ADMIN, ADMIN_PASSWORD = "superadmin", "support-desk-admin-password"
CUSTOMER, CUSTOMER_PASSWORD = "carol@example.com", "carol-has-a-long-password"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SUPPORT_DESK = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)

LOGIN = """
mutation($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename ... on CachedSession { id token user { id } } ... on ErrorResult { errorCode }
  }
}"""
CREATE_USER = "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }"
WHO_AM_I = "{ activeSession { id user { identifier } } }"
MY_SESSIONS = """
{ mySessions { totalItems items { id kind current device ipAddress userAgent authenticatedAt impersonatorId } } }"""
SESSIONS_OF_USER = "query($id: ID!) { sessionsOfUser(userId: $id) { totalItems items { id impersonatorId } } }"
REVOKE = "mutation($id: ID!) { revokeSession(id: $id) }"
IMPERSONATE = """
mutation($id: ID!) { createNewAuthenticatedSession(userId: $id, authenticationStrategyName: "native") { id token } }"""
EVENTS = """
query($id: ID!) {
  sessionEvents(userId: $id, options: {take: 100}) {
    totalItems items { type reason sessionId userId actorId ipAddress }
  }
}"""
LOGOUT = "mutation { logout { success } }"


@dataclass
class Desk:
    """The live server and the clients it is reached through."""

    url: str

    def call(
        self, query: str, token: str | None = None, agent: str = LAPTOP, address: str = "203.0.113.7", **variables: Any
    ) -> dict[str, Any]:
        headers = {"User-Agent": agent, "X-Forwarded-For": address}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = httpx.post(self.url, json={"query": query, "variables": variables}, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", "postgres"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Desk]:
    settings = {
        "SUPERADMIN_IDENTIFIER": ADMIN,
        "SUPERADMIN_PASSWORD": ADMIN_PASSWORD,
        "TOKEN_METHOD": "bearer",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "LOGIN_RATE_LIMIT": "off",
    }
    if request.param == "postgres":
        settings["DATABASE_URL"] = request.getfixturevalue("postgres_url")
        settings["SESSION_CACHE"] = request.getfixturevalue("redis_url")
    with live_server(tmp_path, **settings) as port:
        yield Desk(f"http://127.0.0.1:{port}/graphql")


def login(desk: Desk, username: str, password: str, agent: str, address: str) -> dict[str, Any]:
    result: dict[str, Any] = desk.call(LOGIN, agent=agent, address=address, username=username, password=password)[
        "login"
    ]
    assert result["__typename"] == "CachedSession", result
    return result


def test_a_support_desk_sees_and_explains_everything_that_happened_to_a_customers_sessions(desk: Desk) -> None:
    admin = login(desk, ADMIN, ADMIN_PASSWORD, SUPPORT_DESK, "198.51.100.20")
    customer_id = desk.call(
        CREATE_USER, admin["token"], SUPPORT_DESK, input={"identifier": CUSTOMER, "password": CUSTOMER_PASSWORD}
    )["createUser"]["id"]

    # a customer signs in on a laptop and on a phone
    laptop = login(desk, CUSTOMER, CUSTOMER_PASSWORD, LAPTOP, "203.0.113.7")
    phone = login(desk, CUSTOMER, CUSTOMER_PASSWORD, PHONE, "192.0.2.44")

    # and, on the laptop, sees both: this one marked current, each named by its device and network
    mine = desk.call(MY_SESSIONS, laptop["token"])["mySessions"]
    assert mine["totalItems"] == 2
    by_id = {item["id"]: item for item in mine["items"]}
    assert by_id[laptop["id"]]["current"] and not by_id[phone["id"]]["current"]
    assert "Firefox" in by_id[laptop["id"]]["device"] and "Linux" in by_id[laptop["id"]]["device"]
    assert "iOS" in by_id[phone["id"]]["device"]
    assert by_id[laptop["id"]]["ipAddress"] == "203.0.113.0"  # truncated to /24 by default
    assert by_id[phone["id"]]["userAgent"] == PHONE
    assert all(item["kind"] == "AUTHENTICATED" and item["authenticatedAt"] for item in mine["items"])

    # ends the phone's session, whose token stops working at once
    assert desk.call(REVOKE, laptop["token"], id=phone["id"])["revokeSession"] is True
    assert desk.call(WHO_AM_I, phone["token"])["activeSession"] is None

    # the support desk impersonates the customer to look at their account
    impersonation = desk.call(IMPERSONATE, admin["token"], SUPPORT_DESK, "198.51.100.20", id=customer_id)[
        "createNewAuthenticatedSession"
    ]
    assert desk.call(WHO_AM_I, impersonation["token"])["activeSession"]["user"]["identifier"] == CUSTOMER
    listed = desk.call(SESSIONS_OF_USER, admin["token"], SUPPORT_DESK, id=customer_id)["sessionsOfUser"]
    assert {item["id"]: item["impersonatorId"] for item in listed["items"]} == {
        laptop["id"]: None,
        impersonation["id"]: admin["user"]["id"],
    }

    # the customer sees who is in their account and ends it
    seen = desk.call(MY_SESSIONS, laptop["token"])["mySessions"]["items"]
    assert [item["impersonatorId"] for item in seen if item["id"] == impersonation["id"]] == [admin["user"]["id"]]
    assert desk.call(REVOKE, laptop["token"], id=impersonation["id"])["revokeSession"] is True
    assert desk.call(WHO_AM_I, impersonation["token"])["activeSession"] is None

    # and signs out of the laptop
    assert desk.call(LOGOUT, laptop["token"])["logout"]["success"] is True

    # the event list tells all of it, newest first, with the administrator named where they acted
    events = desk.call(EVENTS, admin["token"], SUPPORT_DESK, id=customer_id)["sessionEvents"]
    told = [
        (event["type"], event["reason"], event["sessionId"], event["actorId"])
        for event in reversed(events["items"])  # oldest first, as the story was told
    ]
    assert told == [
        ("LOGIN", "login", laptop["id"], None),
        ("LOGIN", "login", phone["id"], None),
        ("REVOKED", "revoked-by-owner", phone["id"], None),
        ("IMPERSONATION_STARTED", "impersonation", impersonation["id"], admin["user"]["id"]),
        ("REVOKED", "revoked-by-owner", impersonation["id"], None),
        ("LOGOUT", "logout", laptop["id"], None),
    ]
    assert events["totalItems"] == len(told)
    assert {event["userId"] for event in events["items"]} == {customer_id}
    # each event names the network it came from, truncated like the sessions'
    assert [event["ipAddress"] for event in reversed(events["items"])][:2] == ["203.0.113.0", "192.0.2.0"]
