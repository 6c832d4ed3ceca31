"""Native login: the session it returns, its failures, verification and fresh tokens."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from models import Session
from server.services import passwords
from server.services.passwords import HashingPool
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.helpers import (
    LOGIN,
    SUPERADMIN,
    admin_token,
    create_channel,
    create_role,
    create_user,
    login,
    set_cookies,
)

ALL_PERMISSIONS = [
    "Authenticated", "SuperAdmin", "Owner", "Public", "ReadSession", "DeleteSession", "ImpersonateUser",
    "CreateUser", "ReadUser", "UpdateUser", "DeleteUser", "CreateChannel", "ReadChannel", "UpdateChannel",
    "DeleteChannel", "CreateRole", "ReadRole", "UpdateRole", "DeleteRole", "ReadOrder", "UpdateOrder",
]  # fmt: skip
INVALID_CREDENTIALS = {
    "__typename": "InvalidCredentialsError",
    "errorCode": "INVALID_CREDENTIALS_ERROR",
    "message": "The provided credentials are invalid",
    "authenticationError": "",
}
CLEAN_EXPIRED = "mutation Clean { cleanExpiredSessions }"
ACTIVE_CHANNEL_TOKEN = "query Channel { activeChannel { token } }"


def permission_sets(session: dict[str, Any]) -> list[tuple[str, str, set[str]]]:
    return [(c["id"], c["code"], set(c["permissions"])) for c in session["user"]["channelPermissions"]]


async def test_login_returns_an_authenticated_session(api: GraphQLClient) -> None:
    default_token = (await api.ok(ACTIVE_CHANNEL_TOKEN))["activeChannel"]["token"]
    session = await login(api, *SUPERADMIN)
    assert {key: session[key] for key in ("__typename", "authenticationStrategy", "activeOrderId", "user")} == {
        "__typename": "CachedSession",
        "authenticationStrategy": "native",
        "activeOrderId": None,
        "user": {
            "id": "1",
            "identifier": "superadmin",
            "verified": True,
            "channelPermissions": [
                {"id": "1", "token": default_token, "code": "__default_channel__", "permissions": ALL_PERMISSIONS}
            ],
        },
    }


async def test_login_channel_permissions_are_unions_sorted_by_channel_id(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_channel(api, admin, "second")
    await create_channel(api, admin, "third")
    reader = await create_role(api, admin, "reader", ["ReadSession"], ["3", "1"])
    deleter = await create_role(api, admin, "deleter", ["DeleteSession", "ReadSession"], ["3"])
    await create_user(api, admin, "alice", roleIds=[deleter["id"], reader["id"]])
    session = await login(api, "alice", "pw-alice")
    assert permission_sets(session) == [
        ("1", "__default_channel__", {"ReadSession"}),
        ("3", "third", {"ReadSession", "DeleteSession"}),
    ]


async def test_permissions_are_checked_on_the_requests_channel(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_channel(api, admin, "uk", "uk-token")
    cleaner = await create_role(api, admin, "cleaner", ["DeleteSession"], ["2"])
    await create_user(api, admin, "alice", roleIds=[cleaner["id"]])
    alice = (await login(api, "alice", "pw-alice"))["token"]
    on_default = await api.execute(CLEAN_EXPIRED, token=alice)
    on_uk = await api.execute(CLEAN_EXPIRED, token=alice, headers={"channel-token": "uk-token"})
    assert (on_default.codes, on_uk.data) == (["FORBIDDEN"], {"cleanExpiredSessions": 0})


async def test_superadmin_permissions_cover_every_channel_in_id_order(api: GraphQLClient) -> None:
    admin = await admin_token(api)
    await create_channel(api, admin, "second")
    session = await login(api, *SUPERADMIN)
    assert [(c["id"], c["code"]) for c in session["user"]["channelPermissions"]] == [
        ("1", "__default_channel__"),
        ("2", "second"),
    ]


async def test_wrong_password_gives_invalid_credentials(api: GraphQLClient) -> None:
    assert await login(api, "superadmin", "wrong") == INVALID_CREDENTIALS


async def test_unknown_user_gives_the_same_invalid_credentials(api: GraphQLClient) -> None:
    assert await login(api, "nobody", "superadmin") == INVALID_CREDENTIALS


async def test_user_without_password_cannot_log_in_natively(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "sso-only", password=None)
    assert await login(api, "sso-only", "") == INVALID_CREDENTIALS


async def test_failed_login_starts_no_session(client: GraphQLClient) -> None:
    result = await client.execute('mutation { login(username: "superadmin", password: "wrong") { __typename } }')
    assert "auth-token" not in result.response.headers
    assert set_cookies(result.response) == []


async def test_unverified_user_gets_not_verified_when_verification_is_required(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "unverified", verified=False)
    assert await login(api, "unverified", "pw-unverified") == {
        "__typename": "NotVerifiedError",
        "errorCode": "NOT_VERIFIED_ERROR",
        "message": "Please verify this email address before logging in",
    }


async def test_unverified_user_with_a_wrong_password_gets_invalid_credentials(api: GraphQLClient) -> None:
    await create_user(api, await admin_token(api), "unverified", verified=False)
    assert await login(api, "unverified", "wrong") == INVALID_CREDENTIALS


async def test_unverified_user_logs_in_when_verification_is_not_required(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(require_verification=False))
    await create_user(client, await admin_token(client), "unverified", verified=False)
    session = await login(client, "unverified", "pw-unverified")
    assert (session["__typename"], session["user"]["identifier"], session["user"]["verified"]) == (
        "CachedSession",
        "unverified",
        False,
    )


async def test_every_login_issues_a_new_token(client: GraphQLClient) -> None:
    first = (await login(client, *SUPERADMIN))["token"]
    second = (await login(client, *SUPERADMIN))["token"]  # presents the first one in the cookie
    third = (await login(client, *SUPERADMIN, token=second))["token"]
    assert len({first, second, third}) == 3


async def test_login_sends_the_new_token_in_header_and_cookie(client: GraphQLClient) -> None:
    result = await client.execute(
        'mutation { login(username: "superadmin", password: "superadmin") { ... on CachedSession { token } } }'
    )
    token = result.data["login"]["token"] if result.data else None
    assert result.response.headers["auth-token"] == token
    assert [cookie["_value"] for cookie in set_cookies(result.response)] == [token]


async def test_a_login_past_the_hashing_queue_is_refused_at_once_and_changes_nothing(
    api: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one hashing thread, no queue; the thread is busy with a hash that waits for the test
    pool = HashingPool(threads=1, queue=0)
    monkeypatch.setattr(passwords, "_pool", pool)
    release = threading.Event()
    busy = asyncio.ensure_future(pool.run(release.wait))
    sessions = await Session.all().count()
    try:
        refused = await api.execute(LOGIN, {"username": SUPERADMIN[0], "password": SUPERADMIN[1]})
    finally:
        release.set()
        await busy

    assert refused.data is None and refused.errors is not None
    assert [error["extensions"] for error in refused.errors] == [
        {"code": "FORBIDDEN", "reason": "RATE_LIMITED", "retryAfter": 1}
    ]
    assert refused.errors[0]["message"] == "Too many password checks at once: try again in 1 seconds"
    assert "set-cookie" not in refused.response.headers
    assert await Session.all().count() == sessions
    # with the thread free again, the same login works
    assert (await login(api, *SUPERADMIN))["__typename"] == "CachedSession"
    pool.shutdown()
