"""`python -m server` in a subprocess on a free loopback port, driven over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import REPO_ROOT, SETTINGS_VARIABLES

STARTUP_TIMEOUT = 20.0
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"/health did not answer 200 within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (a start costs about 2 s); every test creates its own sessions."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    port = free_port()
    database = tmp_path / "db" / "sessions.sqlite3"
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=f"sqlite://{database}",
        SUPERADMIN_PASSWORD=SUPERADMIN_PASSWORD,
        LOG_LEVEL="warning",
        PYTHONDONTWRITEBYTECODE="1",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, url, log)
        yield Server(url=url, database=database)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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
