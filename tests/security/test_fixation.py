"""Session fixation and lifetime, attacked through the real app (httpx over ASGI, lifespan included).

- A token presented at login is never promoted: every login issues a new one.
- A token the server did not issue never resolves, and is never adopted: Owner operations then
  start a NEW session with a token of the server's making.
- SESSION_MAX_LIFETIME ends a session however active it is, and no cached copy outlives it.

The login limiter is switched off here (these tests are not about it and log in freely).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from server.services.tokens import token_digest
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.schema.helpers import set_cookies

MakeClient = Callable[[Settings], Any]

LOGIN = """
mutation Login {
  login(username: "superadmin", password: "superadmin") {
    __typename
    ... on CachedSession { token expires cacheExpiry activeOrderId user { identifier } }
  }
}
"""
ACTIVE_SESSION = "query { activeSession { id token user { identifier } } }"
SESSION_FROM_TOKEN = "query($token: String!) { sessionFromToken(token: $token) { id user { identifier } } }"
CREATE_ANONYMOUS = "mutation { createAnonymousSession { token } }"
ADD_ITEM = 'mutation { addItemToOrder(productVariantId: "sku-1", quantity: 1) { id userId } }'
CREATE_CHANNEL = 'mutation { createChannel(input: {code: "attacker"}) { id } }'


async def start(make_settings: SettingsFactory, make_client: MakeClient, **overrides: Any) -> GraphQLClient:
    client: GraphQLClient = await make_client(make_settings(login_rate_limit=None, **overrides))
    return client


async def resolve(client: GraphQLClient, token: str) -> dict[str, Any] | None:
    """What the server makes of `token`, asked without presenting any token."""
    client.http.cookies.clear()
    data = await client.ok(SESSION_FROM_TOKEN, {"token": token})
    session: dict[str, Any] | None = data["sessionFromToken"]
    return session


def issued_token(result: GraphQLResult, transport: str) -> str | None:
    """The token the response hands to the client through `transport`."""
    if transport == "bearer":
        header: str | None = result.response.headers.get("auth-token")
        return header
    values = [cookie["_value"] for cookie in set_cookies(result.response) if cookie["_name"] == "session"]
    return values[-1] if values else None


async def present(client: GraphQLClient, query: str, token: str | None, transport: str = "bearer") -> GraphQLResult:
    """Send `query` with only `token` (none if None), as a cookie or as a bearer token."""
    client.http.cookies.clear()
    if token is not None and transport == "cookie":
        client.http.cookies.set("session", token)
        return await client.execute(query)
    return await client.execute(query, token=token)


# -- Fixation: a planted token is never promoted ----------------------------------------------------


@pytest.mark.parametrize("transport", ["cookie", "bearer"])
async def test_login_never_promotes_the_token_it_was_sent_with(
    make_settings: SettingsFactory, make_client: MakeClient, transport: str
) -> None:
    client = await start(make_settings, make_client)
    # the attacker gets a guest session from the server and plants its token in the victim's client
    planted = (await client.ok(CREATE_ANONYMOUS))["createAnonymousSession"]["token"]

    # the victim logs in while presenting the planted token
    result = await present(client, LOGIN, planted, transport)

    assert result.errors is None and result.data is not None
    session = result.data["login"]
    assert session["__typename"] == "CachedSession"
    assert session["token"] != planted
    assert issued_token(result, transport) == session["token"]
    # the attacker's token is still a guest session: no user, no permissions
    guest = await resolve(client, planted)
    assert guest is not None and guest["user"] is None
    denied = await present(client, CREATE_CHANNEL, planted, "bearer")
    assert denied.codes == ["FORBIDDEN"]
    assert (await resolve(client, session["token"]) or {}).get("user") == {"identifier": "superadmin"}


async def test_a_planted_session_holding_a_cart_ends_at_login(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    client = await start(make_settings, make_client)
    # the attacker fills a cart, which starts a guest session, and plants that session's token
    result = await client.execute(ADD_ITEM)
    planted = issued_token(result, "bearer")
    assert planted is not None

    login = await present(client, LOGIN, planted, "cookie")

    assert login.data is not None
    session = login.data["login"]
    assert session["token"] != planted and session["activeOrderId"] is not None  # the cart was merged
    assert await resolve(client, planted) is None  # and the session that held it is gone


async def test_every_login_of_the_same_client_gets_a_new_token(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    client = await start(make_settings, make_client)
    first = await present(client, LOGIN, secrets.token_urlsafe(32), "bearer")
    assert first.data is not None
    token = first.data["login"]["token"]

    # logging in again presenting an authenticated token still issues another one; both stay valid
    second = await present(client, LOGIN, token, "bearer")

    assert second.data is not None
    assert second.data["login"]["token"] != token
    assert await resolve(client, token) is not None


# -- Tokens the server did not issue --------------------------------------------------------------


@pytest.mark.parametrize("transport", ["cookie", "bearer"])
async def test_a_made_up_token_is_never_accepted_nor_adopted(
    make_settings: SettingsFactory, make_client: MakeClient, transport: str
) -> None:
    client = await start(make_settings, make_client)
    # a token of exactly the shape the server issues (43 URL-safe characters), never issued by it
    forged = secrets.token_urlsafe(32)

    assert await resolve(client, forged) is None
    active = await present(client, ACTIVE_SESSION, forged, transport)
    assert (active.data, active.errors) == ({"activeSession": None}, None)

    # an Owner operation starts a new guest session with a token of the server's making
    added = await present(client, ADD_ITEM, forged, transport)
    assert added.errors is None
    fresh = issued_token(added, transport)
    assert fresh is not None and fresh != forged
    assert await resolve(client, fresh) is not None
    assert await resolve(client, forged) is None

    # creating a session or logging in with it presented does the same
    anonymous = await present(client, CREATE_ANONYMOUS, forged, transport)
    assert anonymous.data is not None and anonymous.data["createAnonymousSession"]["token"] != forged
    login = await present(client, LOGIN, forged, transport)
    assert login.data is not None and login.data["login"]["token"] not in (forged, fresh)
    assert await resolve(client, forged) is None


async def test_the_stored_digest_of_a_token_is_not_a_token(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    # someone who read the database (or the cache keys) holds digests, not tokens
    client = await start(make_settings, make_client)
    login = await present(client, LOGIN, None)
    assert login.data is not None
    token = login.data["login"]["token"]

    assert await resolve(client, token_digest(token)) is None
    added = await present(client, ADD_ITEM, token_digest(token), "bearer")
    assert issued_token(added, "bearer") not in (None, token, token_digest(token))


# -- SESSION_MAX_LIFETIME ----------------------------------------------------------------------------


async def test_max_lifetime_ends_a_session_kept_alive_by_sliding_expiry(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    # sliding expiry of 2 s alone would keep a session polled every 0.2 s alive for ever (2 s, not 1:
    # a loaded machine can stall a poll for most of a second)
    client = await start(make_settings, make_client, session_duration=2.0, session_max_lifetime=3.0)
    started = time.time()
    login = await present(client, LOGIN, None)
    logged_in = time.time()
    assert login.data is not None
    token = login.data["login"]["token"]

    alive_at: list[float] = []
    while True:
        await asyncio.sleep(0.2)
        sent = time.time()
        active = await present(client, ACTIVE_SESSION, token, "bearer")
        done = time.time()
        assert active.errors is None and active.data is not None
        if active.data["activeSession"] is None:
            break
        alive_at.append(done)
        assert sent < logged_in + 3.0, "the session outlived SESSION_MAX_LIFETIME"

    # it slid past its first expiry (2 s) while in use, and ended once 3 s had passed since login
    assert max(alive_at) > logged_in + 2.2
    assert done >= started + 3.0
    assert await resolve(client, token) is None
    # the Owner operation that follows starts a new session rather than reviving the old one
    added = await present(client, ADD_ITEM, token, "bearer")
    assert issued_token(added, "bearer") not in (None, token)


async def test_no_cached_copy_is_served_past_the_max_lifetime(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    # a year of sliding expiry and a 5-minute cache TTL: only the absolute limit can end this session
    client = await start(
        make_settings,
        make_client,
        session_duration=365 * 86400.0,
        session_cache_ttl=300.0,
        session_max_lifetime=1.0,
    )
    login = await present(client, LOGIN, None)
    logged_in = time.time()
    assert login.data is not None
    session = login.data["login"]
    token = session["token"]

    # the session and its cached copy both say when they end: at the latest 1 s after login
    assert session["cacheExpiry"] <= logged_in + 1.0
    assert _unix(session["expires"]) <= logged_in + 1.0
    in_use = await present(client, ACTIVE_SESSION, token, "bearer")
    assert in_use.data is not None and in_use.data["activeSession"]["token"] == token

    await asyncio.sleep(max(0.0, logged_in + 1.05 - time.time()))

    active = await present(client, ACTIVE_SESSION, token, "bearer")
    assert (active.data, active.errors) == ({"activeSession": None}, None)
    assert await resolve(client, token) is None


async def test_max_lifetime_is_off_by_default(make_settings: SettingsFactory, make_client: MakeClient) -> None:
    assert Settings().session_max_lifetime is None
    client = await start(make_settings, make_client, session_duration=7 * 86400.0)
    login = await present(client, LOGIN, None)
    assert login.data is not None

    assert _unix(login.data["login"]["expires"]) == pytest.approx(time.time() + 7 * 86400.0, abs=60)


def _unix(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()
