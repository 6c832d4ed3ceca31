"""Where the token travels (TOKEN_METHOD, header and cookie names), rememberMe and logout."""

from __future__ import annotations

import asyncio
import secrets

from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.conftest import ClientsFactory
from tests.schema.helpers import ACTIVE_SESSION, CREATE_ANONYMOUS_SESSION, LOGIN, SUPERADMIN, set_cookies

ANONYMOUS = "mutation Anonymous { createAnonymousSession { token } }"
ACTIVE_SESSION_TOKEN = "query Active { activeSession { token } }"
ACTIVE_CHANNEL_CODE = "query Channel { activeChannel { code } }"
LOGOUT = "mutation Logout { logout { success } }"
CREATE_CHANNEL = (
    "mutation Create($code: String!, $token: String) { createChannel(input: {code: $code, token: $token}) { id } }"
)


def deletion(name: str = "session") -> list[tuple[str, str, str]]:
    return [(name, '""', "0")]


def cookie_summary(response) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    return [(c["_name"], c["_value"], c.get("max-age")) for c in set_cookies(response)]


async def test_bearer_mode_sends_the_header_and_no_cookie(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(token_methods=("bearer",)))
    result = await client.execute(ANONYMOUS)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert (result.response.headers.get("auth-token"), set_cookies(result.response)) == (token, [])
    assert await client.ok(ACTIVE_SESSION_TOKEN, token=token) == {"activeSession": {"token": token}}


async def test_cookie_mode_sets_the_cookie_and_no_header(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(token_methods=("cookie",)))
    result = await client.execute(ANONYMOUS)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert "auth-token" not in result.response.headers
    assert cookie_summary(result.response) == [("session", token, "31536000")]
    assert await client.ok(ACTIVE_SESSION_TOKEN) == {"activeSession": {"token": token}}


async def test_cookie_mode_ignores_an_authorization_header(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(token_methods=("cookie",)))
    token = (await client.ok(ANONYMOUS))["createAnonymousSession"]["token"]
    client.http.cookies.clear()
    assert await client.ok(ACTIVE_SESSION_TOKEN, token=token) == {"activeSession": None}


async def test_both_modes_send_header_and_cookie(client: GraphQLClient) -> None:
    result = await client.execute(ANONYMOUS)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert result.response.headers["auth-token"] == token
    assert cookie_summary(result.response) == [("session", token, "31536000")]


async def test_unknown_bearer_token_is_treated_as_no_token(client: GraphQLClient) -> None:
    result = await client.execute(ACTIVE_SESSION, token=secrets.token_urlsafe(32))
    assert (result.data, result.errors, set_cookies(result.response)) == ({"activeSession": None}, None, [])


async def test_stale_cookie_is_cleared(client: GraphQLClient) -> None:
    client.http.cookies.set("session", secrets.token_urlsafe(32))
    result = await client.execute(ACTIVE_SESSION)
    assert (result.data, result.errors) == ({"activeSession": None}, None)
    assert cookie_summary(result.response) == deletion()


async def test_a_stale_cookie_does_not_hide_a_valid_bearer_token(client: GraphQLClient) -> None:
    token = (await client.ok(ANONYMOUS))["createAnonymousSession"]["token"]
    client.http.cookies.set("session", secrets.token_urlsafe(32))
    result = await client.execute(ACTIVE_SESSION_TOKEN, token=token)
    assert (result.data, result.errors) == ({"activeSession": {"token": token}}, None)
    assert cookie_summary(result.response) == deletion()


async def test_expired_cookie_is_treated_as_no_token_and_cleared(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(session_duration=1.0))
    token = (await client.ok(ANONYMOUS))["createAnonymousSession"]["token"]
    await asyncio.sleep(1.1)
    client.http.cookies.set("session", token)  # the browser would drop it (Max-Age=1); a client may not
    result = await client.execute(ACTIVE_SESSION)
    assert (result.data, result.errors) == ({"activeSession": None}, None)
    assert cookie_summary(result.response) == deletion()


async def test_owner_operation_with_an_expired_token_starts_a_new_session(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(session_duration=1.0, token_methods=("bearer",)))
    old = (await client.ok(ANONYMOUS))["createAnonymousSession"]["token"]
    await asyncio.sleep(1.1)
    result = await client.execute(
        'mutation Add { addItemToOrder(productVariantId: "v1", quantity: 1) { id } }', token=old
    )
    assert result.errors is None
    assert result.response.headers["auth-token"] not in ("", old)


async def test_custom_header_and_cookie_names_are_honoured(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    settings = make_settings(auth_token_header="x-session-token", session_cookie_name="sid")
    client = await make_client(settings)
    result = await client.execute(ANONYMOUS)
    token = result.data["createAnonymousSession"]["token"] if result.data else None
    assert (result.response.headers.get("x-session-token"), "auth-token" in result.response.headers) == (token, False)
    assert cookie_summary(result.response) == [("sid", token, "31536000")]
    assert await client.ok(ACTIVE_SESSION_TOKEN) == {"activeSession": {"token": token}}


async def test_custom_channel_token_header_is_honoured(
    make_settings: SettingsFactory, make_client: ClientFactory
) -> None:
    client = await make_client(make_settings(channel_token_header="x-channel"))
    login = await client.ok(LOGIN, dict(zip(("username", "password"), SUPERADMIN, strict=True)))
    admin = login["login"]["token"]
    await client.ok(CREATE_CHANNEL, {"code": "uk", "token": "uk-token"}, token=admin)
    assert await client.ok(ACTIVE_CHANNEL_CODE, headers={"x-channel": "uk-token"}) == {"activeChannel": {"code": "uk"}}
    default = await client.ok(ACTIVE_CHANNEL_CODE, headers={"channel-token": "uk-token"})
    assert default == {"activeChannel": {"code": "__default_channel__"}}


async def test_login_with_remember_me_sets_a_persistent_cookie(client: GraphQLClient) -> None:
    variables = {"username": "superadmin", "password": "superadmin", "rememberMe": True}
    result = await client.execute(LOGIN, variables)
    token = result.data["login"]["token"] if result.data else None
    assert cookie_summary(result.response) == [("session", token, "31536000")]


async def test_login_without_remember_me_sets_a_browser_session_cookie(client: GraphQLClient) -> None:
    result = await client.execute(LOGIN, {"username": "superadmin", "password": "superadmin"})
    token = result.data["login"]["token"] if result.data else None
    [cookie] = set_cookies(result.response)
    assert cookie == {"_name": "session", "_value": token, "httponly": "", "samesite": "lax", "path": "/"}


async def test_logout_clears_the_cookie_and_ends_the_session(client: GraphQLClient) -> None:
    token = (await client.ok(LOGIN, {"username": "superadmin", "password": "superadmin"}))["login"]["token"]
    result = await client.execute(LOGOUT)
    assert (result.data, cookie_summary(result.response)) == ({"logout": {"success": True}}, deletion())
    assert await client.ok(ACTIVE_SESSION_TOKEN, token=token) == {"activeSession": None}


async def test_logout_ends_only_that_session(make_settings: SettingsFactory, open_app: ClientsFactory) -> None:
    new_client = await open_app(make_settings())
    laptop, phone = new_client(), new_client()
    variables = {"username": "superadmin", "password": "superadmin"}
    phone_token = (await phone.ok(LOGIN, variables))["login"]["token"]
    await laptop.ok(LOGIN, variables)
    assert await laptop.ok(LOGOUT) == {"logout": {"success": True}}
    assert await laptop.ok(ACTIVE_SESSION_TOKEN) == {"activeSession": None}
    assert await phone.ok(ACTIVE_SESSION_TOKEN) == {"activeSession": {"token": phone_token}}


async def test_logout_without_a_session_is_not_a_success(client: GraphQLClient) -> None:
    assert await client.ok(LOGOUT) == {"logout": {"success": False}}


async def test_logout_by_bearer_ends_the_session(api: GraphQLClient) -> None:
    token = (await api.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]["token"]
    assert await api.ok(LOGOUT, token=token) == {"logout": {"success": True}}
    assert await api.ok(ACTIVE_SESSION_TOKEN, token=token) == {"activeSession": None}
