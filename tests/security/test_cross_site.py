"""What a page on another site can make a browser send with the user's cookie, and what comes back.

CORS only from CORS_ALLOW_ORIGINS; POST only as application/json (an HTML form cannot send it);
a GET with the session cookie runs a query only with `x-requested-with` (a header a cross-site
page cannot add without a preflight), and never a mutation; no WebSocket; COOKIE_SECURE;
`Cache-Control: no-store` on every response that hands out a token.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, refusal
from tests.live_server import live_server
from tests.schema.helpers import LOGIN, SUPERADMIN

SHOP = "https://shop.example"
EVIL = "https://evil.example"
ANONYMOUS = "mutation { createAnonymousSession { token } }"
ACTIVE_SESSION = "{ activeSession { token } }"
ADD_ITEM = 'mutation { addItemToOrder(productVariantId: "v1", quantity: 1) { id } }'
PREFLIGHT_HEADERS = "content-type, authorization, channel-token, x-requested-with"


def preflight(origin: str, method: str = "POST", headers: str = PREFLIGHT_HEADERS) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": method, "access-control-request-headers": headers}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def hands_out_a_token(response: httpx.Response) -> bool:
    return "auth-token" in response.headers or "set-cookie" in response.headers


async def cookie_client(make_settings: SettingsFactory, make_client: Any, **overrides: Any) -> GraphQLClient:
    """A browser-like client holding a session cookie."""
    client: GraphQLClient = await make_client(make_settings(**overrides))
    await client.ok(ANONYMOUS)
    assert client.http.cookies.get("session")
    return client


# --- CORS ---------------------------------------------------------------------------------------


async def test_without_configured_origins_no_cors_header_is_sent(client: GraphQLClient) -> None:
    options = await client.http.options("/graphql", headers=preflight(EVIL))
    get = await client.http.get("/graphql", params={"query": "{ __typename }"}, headers={"origin": EVIL})
    post = await client.http.post("/graphql", json={"query": ANONYMOUS}, headers={"origin": EVIL})
    assert [(r.status_code, cors_headers(r)) for r in (options, get, post)] == [(405, {}), (200, {}), (200, {})]


async def test_configured_origin_passes_the_preflight_with_credentials(
    make_settings: SettingsFactory, make_client: Any
) -> None:
    client: GraphQLClient = await make_client(make_settings(cors_allow_origins=(SHOP,)))
    response = await client.http.options("/graphql", headers=preflight(SHOP))
    headers = cors_headers(response)
    assert (response.status_code, headers["access-control-allow-origin"]) == (200, SHOP)
    assert (headers["access-control-allow-credentials"], headers["access-control-allow-methods"]) == (
        "true",
        "GET, POST",
    )
    allowed = {name.strip().lower() for name in headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization", "channel-token", "x-requested-with"} <= allowed


async def test_other_origins_fail_the_preflight_and_get_no_allow_origin(
    make_settings: SettingsFactory, make_client: Any
) -> None:
    client: GraphQLClient = await make_client(make_settings(cors_allow_origins=(SHOP,)))
    options = await client.http.options("/graphql", headers=preflight(EVIL))
    post = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": EVIL})
    assert (options.status_code, options.json()) == (400, refusal("Disallowed CORS origin", "BAD_REQUEST"))
    assert ("access-control-allow-origin" in options.headers, "access-control-allow-origin" in post.headers) == (
        False,
        False,
    )


async def test_unknown_request_header_fails_the_preflight(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(cors_allow_origins=(SHOP,)))
    response = await client.http.options("/graphql", headers=preflight(SHOP, headers="x-forged"))
    assert (response.status_code, response.json()) == (400, refusal("Disallowed CORS headers", "BAD_REQUEST"))


async def test_allowed_origin_can_read_the_new_token_header(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(cors_allow_origins=(SHOP,)))
    response = await client.http.post("/graphql", json={"query": ANONYMOUS}, headers={"origin": SHOP})
    headers = cors_headers(response)
    assert (headers["access-control-allow-origin"], headers["access-control-allow-credentials"]) == (SHOP, "true")
    assert headers["access-control-expose-headers"] == "auth-token"
    assert response.headers["auth-token"] == response.json()["data"]["createAnonymousSession"]["token"]


async def test_custom_header_names_follow_the_settings(make_settings: SettingsFactory, make_client: Any) -> None:
    settings = make_settings(cors_allow_origins=(SHOP,), auth_token_header="x-token", channel_token_header="x-channel")
    client: GraphQLClient = await make_client(settings)
    post = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": SHOP})
    options = await client.http.options("/graphql", headers=preflight(SHOP, headers="x-channel"))
    assert (post.headers["access-control-expose-headers"], options.status_code) == ("x-token", 200)


async def test_cookie_only_mode_exposes_no_token_header(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(cors_allow_origins=(SHOP,), token_methods=("cookie",)))
    response = await client.http.post("/graphql", json={"query": ANONYMOUS}, headers={"origin": SHOP})
    assert (response.headers["access-control-allow-origin"], "access-control-expose-headers" in response.headers) == (
        SHOP,
        False,
    )


# --- Form posts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"query": ANONYMOUS}},
        {"files": {"query": (None, ANONYMOUS)}},
        {"content": '{"query": "' + ANONYMOUS + '"}', "headers": {"content-type": "text/plain"}},
        {"content": '{"query": "' + ANONYMOUS + '"}', "headers": {"content-type": "application/jsonp"}},
        {"content": '{"query": "' + ANONYMOUS + '"}'},
    ],
    ids=["urlencoded", "multipart", "text-plain", "json-lookalike", "no-content-type"],
)
async def test_posts_a_form_can_send_are_415(client: GraphQLClient, body: dict[str, Any]) -> None:
    await client.ok(ANONYMOUS)
    response = await client.http.post("/graphql", **body)
    expected = refusal("POST requests must have content-type application/json", "UNSUPPORTED_MEDIA_TYPE")
    assert (response.status_code, response.json()) == (415, expected)
    assert hands_out_a_token(response) is False


async def test_json_with_a_charset_is_served(client: GraphQLClient) -> None:
    content = '{"query": "{ __typename }"}'
    response = await client.http.post(
        "/graphql", content=content, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


# --- GET ----------------------------------------------------------------------------------------


async def test_get_with_the_cookie_and_no_custom_header_is_refused(
    make_settings: SettingsFactory, make_client: Any
) -> None:
    client = await cookie_client(make_settings, make_client)
    response = await client.http.get("/graphql", params={"query": ACTIVE_SESSION})
    expected = refusal("A GET with the session cookie needs the x-requested-with header", "BAD_REQUEST")
    assert (response.status_code, response.json()) == (400, expected)
    assert hands_out_a_token(response) is False


async def test_get_with_the_cookie_and_the_custom_header_runs_the_query(
    make_settings: SettingsFactory, make_client: Any
) -> None:
    client = await cookie_client(make_settings, make_client)
    token = client.http.cookies["session"]
    response = await client.http.get("/graphql", params={"query": ACTIVE_SESSION}, headers={"x-requested-with": "x"})
    assert (response.status_code, response.json()) == (200, {"data": {"activeSession": {"token": token}}})


async def test_get_never_runs_a_mutation(make_settings: SettingsFactory, make_client: Any) -> None:
    client = await cookie_client(make_settings, make_client)
    for query in (ANONYMOUS, ADD_ITEM, "mutation { logout { success } }"):
        response = await client.http.get("/graphql", params={"query": query}, headers={"x-requested-with": "x"})
        # GraphQL over HTTP: a mutation in a GET is 405 Method Not Allowed
        assert (response.status_code, response.headers["allow"], hands_out_a_token(response)) == (405, "POST", False)
    assert await client.ok("{ activeOrder { id } }") == {"activeOrder": None}  # no item was added, no logout
    assert (await client.ok(ACTIVE_SESSION))["activeSession"] is not None


async def test_get_without_a_cookie_needs_no_custom_header(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params={"query": ACTIVE_SESSION})
    assert (response.status_code, response.json()) == (200, {"data": {"activeSession": None}})


async def test_bearer_only_mode_ignores_the_cookie_for_get(make_settings: SettingsFactory, make_client: Any) -> None:
    client: GraphQLClient = await make_client(make_settings(token_methods=("bearer",)))
    client.http.cookies.set("session", "whatever")
    response = await client.http.get("/graphql", params={"query": ACTIVE_SESSION})
    assert (response.status_code, response.json()) == (200, {"data": {"activeSession": None}})


async def test_graphiql_still_opens_with_the_cookie(make_settings: SettingsFactory, make_client: Any) -> None:
    client = await cookie_client(make_settings, make_client)
    response = await client.http.get("/graphql", headers={"accept": "text/html"})
    assert (response.status_code, response.headers["content-type"].split(";")[0]) == (200, "text/html")
    assert "graphiql" in response.text.lower()


# --- WebSocket ----------------------------------------------------------------------------------


async def test_websocket_to_graphql_is_closed_before_accept(make_settings: SettingsFactory) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"origin", EVIL.encode())],
        "subprotocols": ["graphql-transport-ws", "graphql-ws"],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    async with LifespanManager(create_app(make_settings())) as manager:
        await manager.app(scope, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with live_server(tmp_path_factory.mktemp("cross-site")) as port:
        yield port


def test_server_never_upgrades_graphql_to_a_websocket(server_port: int) -> None:
    handshake = (
        f"GET /graphql HTTP/1.1\r\nhost: 127.0.0.1:{server_port}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        f"sec-websocket-protocol: graphql-transport-ws\r\norigin: {EVIL}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server_port), timeout=5) as sock:
        sock.sendall(handshake.encode())
        status = int(sock.recv(65536).split(b"\r\n", 1)[0].split()[1])
    # With a WebSocket library uvicorn lets the app refuse the handshake (403); without one it is plain HTTP.
    has_websockets = any(importlib.util.find_spec(name) for name in ("websockets", "wsproto"))
    assert status == (403 if has_websockets else 400)


# --- Cookie attributes and caching of token responses ----------------------------------------------


def session_cookie(response: httpx.Response) -> str:
    [header] = [value for value in response.headers.get_list("set-cookie") if value.startswith("session=")]
    return header


@pytest.mark.parametrize("secure", [True, False])
async def test_cookie_secure_marks_the_cookie(make_settings: SettingsFactory, make_client: Any, secure: bool) -> None:
    client: GraphQLClient = await make_client(make_settings(cookie_secure=secure))
    header = session_cookie((await client.execute(ANONYMOUS)).response)
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert ("secure" in attributes, "httponly" in attributes) == (secure, True)
    assert SimpleCookie(header)["session"]["samesite"].lower() == "lax"


async def test_every_response_carrying_a_token_is_no_store(client: GraphQLClient) -> None:
    anonymous = (await client.execute(ANONYMOUS)).response
    client.http.cookies.clear()
    owner = (await client.execute(ADD_ITEM)).response  # no session yet: the Owner operation creates one
    client.http.cookies.clear()
    variables = dict(zip(("username", "password"), SUPERADMIN, strict=True))
    login = (await client.execute(LOGIN, variables)).response
    for response in (anonymous, owner, login):
        assert (response.headers.get("cache-control"), "auth-token" in response.headers) == ("no-store", True)
        assert session_cookie(response)
