"""`python -m server` in a subprocess on a free loopback port, driven over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import live_server

SUPERADMIN_PASSWORD = "e2e-not-the-default"

CREATE_ANONYMOUS_SESSION = "mutation { createAnonymousSession { token user { id } } }"
ADD_ITEM = "mutation Add($v: ID!, $q: Int!) { addItemToOrder(productVariantId: $v, quantity: $q) { id userId } }"
LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) {
    __typename
    ... on CachedSession { token activeOrderId user { id identifier } }
    ... on ErrorResult { errorCode }
  }
}"""
ACTIVE_ORDER = "{ activeOrder { id userId lines { productVariantId quantity } } }"
SESSION_FROM_TOKEN = "query S($t: String!) { sessionFromToken(token: $t) { activeOrderId user { identifier } } }"
LOGOUT = "mutation { logout { success } }"


@dataclass
class Server:
    url: str
    database: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (a start costs about 2 s); every test creates its own sessions."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    database = tmp_path / "db" / "sessions.sqlite3"
    with live_server(tmp_path, DATABASE_URL=f"sqlite://{database}", SUPERADMIN_PASSWORD=SUPERADMIN_PASSWORD) as port:
        yield Server(url=f"http://127.0.0.1:{port}", database=database)


def graphql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def test_guest_cart_survives_login_and_logout_ends_the_session(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        anonymous = graphql(http, CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]
        assert anonymous["user"] is None and http.cookies.get("session") == anonymous["token"]

        order = graphql(http, ADD_ITEM, v="sku-42", q=3)["addItemToOrder"]
        assert order["userId"] is None

        refused = graphql(http, LOGIN, u="superadmin", p="superadmin")["login"]
        assert refused == {"__typename": "InvalidCredentialsError", "errorCode": "INVALID_CREDENTIALS_ERROR"}

        login = graphql(http, LOGIN, u="superadmin", p=SUPERADMIN_PASSWORD)["login"]
        assert login["__typename"] == "CachedSession"
        assert login["user"]["identifier"] == "superadmin"
        token = login["token"]
        assert token != anonymous["token"] and http.cookies.get("session") == token

        active = graphql(http, ACTIVE_ORDER)["activeOrder"]
        assert active["userId"] == login["user"]["id"]
        assert active["id"] == login["activeOrderId"]
        assert active["lines"] == [{"productVariantId": "sku-42", "quantity": 3}]

        resolved = graphql(http, SESSION_FROM_TOKEN, t=token)["sessionFromToken"]
        assert resolved == {"activeOrderId": active["id"], "user": {"identifier": "superadmin"}}

        assert graphql(http, LOGOUT)["logout"] == {"success": True}
        assert graphql(http, SESSION_FROM_TOKEN, t=token)["sessionFromToken"] is None
        assert graphql(http, SESSION_FROM_TOKEN, t=anonymous["token"])["sessionFromToken"] is None
    assert server.database.is_file()


def test_bearer_token_is_returned_in_the_auth_token_header(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/graphql", json={"query": CREATE_ANONYMOUS_SESSION})
    token = response.json()["data"]["createAnonymousSession"]["token"]
    assert response.headers["auth-token"] == token
    with httpx.Client(base_url=server.url, timeout=10, headers={"authorization": f"Bearer {token}"}) as http:
        assert graphql(http, "{ activeSession { token } }") == {"activeSession": {"token": token}}


def test_browser_get_opens_graphiql(server: Server) -> None:
    response = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_health_reports_ok(server: Server) -> None:
    response = httpx.get(f"{server.url}/health", timeout=10)
    assert (response.status_code, response.json()["status"]) == (200, "ok")
