"""Nothing secret reaches the logs or the answers, even under LOG_LEVEL=debug.

A real `python -m server` subprocess (production argon2 costs, debug logging, access log on) runs a
whole flow: a guest session and its cart, the superadmin's login, a user created with a password,
that user's login and password change, failing logins, a token sent in a GET query string, a
masked internal error (another process holds the SQLite database locked), and logouts. Then its
stdout and stderr must hold no token it issued, no password, no argon2 hash and no traceback, and
no answer may hold a stack trace or SQL.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.schema import build_schema
from tests.live_server import live_server

SUPERADMIN_PASSWORD = "Superadmin-pw-9f3c1e"
USER_PASSWORD = "User-pw-4b7d2a"
NEW_PASSWORD = "New-user-pw-8e6f0c"
WRONG_PASSWORD = "Wrong-pw-1a5c9b"
PASSWORDS = (SUPERADMIN_PASSWORD, USER_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD)

LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) { __typename ... on CachedSession { token } }
}"""
CREATE_USER = "mutation($i: CreateUserInput!) { createUser(input: $i) { id identifier } }"
CHANGE_PASSWORD = (
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { success } }"
)
ADD_ITEM = (
    "mutation($v: ID!, $q: Int!) { addItemToOrder(productVariantId: $v, quantity: $q) { id lines { quantity } } }"
)
#: SQL in an answer: a statement keyword followed by the clause it needs.
SQL = re.compile(r"\b(SELECT\b.*\bFROM|INSERT\s+INTO|UPDATE\b.*\bSET|DELETE\s+FROM)\b", re.DOTALL)
#: What a leaked exception looks like in an answer.
INTERNALS = ("Traceback", 'File "', "sqlite3", "aiosqlite", "asyncpg", "tortoise", "OperationalError", "$argon2")


@dataclass
class Flow:
    """A server in a subprocess, what it answered and every token it issued."""

    url: str
    database: Path
    log: Path
    answers: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, event_hooks={"response": [self._record]})

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append(response.text)
        if response.headers.get("auth-token"):
            self.tokens.add(response.headers["auth-token"])
        for cookie in response.headers.get_list("set-cookie"):
            value = cookie.partition("=")[2].partition(";")[0].strip('"')
            if value:
                self.tokens.add(value)
        if response.headers.get("content-type", "").startswith("application/json"):
            self._collect_tokens(response.json())

    def _collect_tokens(self, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "token" and isinstance(item, str):
                    self.tokens.add(item)
                else:
                    self._collect_tokens(item)
        elif isinstance(value, list):
            for item in value:
                self._collect_tokens(item)


def graphql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    body = graphql(http, query, **variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[Flow]:
    settings = {"SUPERADMIN_PASSWORD": SUPERADMIN_PASSWORD, "LOG_LEVEL": "debug", "LOGIN_RATE_LIMIT": "off"}
    with live_server(tmp_path, **settings) as port:
        yield Flow(url=f"http://127.0.0.1:{port}", database=tmp_path / "sessions.sqlite3", log=tmp_path / "server.log")


def run_the_flow(flow: Flow) -> None:
    with flow.client() as guest:  # cookie mode: the jar keeps the session
        anonymous = data(guest, "mutation { createAnonymousSession { token } }")["createAnonymousSession"]["token"]
        data(guest, ADD_ITEM, v="sku-1", q=2)
        refused = graphql(guest, ADD_ITEM, v="sku-1", q=-1)
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        admin = data(guest, LOGIN, u="superadmin", p=SUPERADMIN_PASSWORD)["login"]["token"]
        assert admin != anonymous
    with flow.client(admin) as http:
        created = data(http, CREATE_USER, i={"identifier": "leak-check", "password": USER_PASSWORD})
        assert created["createUser"]["identifier"] == "leak-check"
        duplicate = graphql(http, CREATE_USER, i={"identifier": "leak-check", "password": USER_PASSWORD})
        assert duplicate["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        for username in ("leak-check", "nobody-is-called-this"):
            failed = data(http, LOGIN, u=username, p=WRONG_PASSWORD)["login"]
            assert failed == {"__typename": "InvalidCredentialsError"}
        user = data(http, LOGIN, u="leak-check", p=USER_PASSWORD)["login"]["token"]
    with flow.client(user) as http:
        if "changePassword" in build_schema().as_str():
            assert data(http, CHANGE_PASSWORD, c=USER_PASSWORD, n=NEW_PASSWORD) == {"changePassword": {"success": True}}
            assert data(http, CHANGE_PASSWORD, c=WRONG_PASSWORD, n=USER_PASSWORD) == {
                "changePassword": {"success": False}
            }
        assert data(http, "mutation { logout { success } }") == {"logout": {"success": True}}
    with flow.client() as http:  # a client may put a token in a GET query string; the access log prints the URL
        query = f'{{ sessionFromToken(token: "{admin}") {{ id }} }}'
        response = http.get("/graphql", params={"query": query}, headers={"accept": "application/json"})
        assert response.status_code == 200 and response.json()["data"]["sessionFromToken"] is not None
        graphql(http, "{ sessionFromToken(token: $t) { id } }")  # invalid: an undefined variable
    # A masked internal error: another process holds the database locked longer than the server waits.
    lock = sqlite3.connect(flow.database, timeout=0)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with flow.client() as http:
            masked = graphql(http, "mutation { createAnonymousSession { token } }")
    finally:
        lock.rollback()
        lock.close()
    assert masked["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", masked
    with flow.client(admin) as http:
        assert data(http, "mutation { logout { success } }") == {"logout": {"success": True}}


def test_no_token_password_hash_or_traceback_reaches_the_logs_or_the_answers(flow: Flow) -> None:
    run_the_flow(flow)
    with flow.client() as http:  # the server is fine after all that
        assert http.get("/health").status_code == 200

    log = flow.log.read_text(errors="replace")
    # The log is the debug log indeed, with the masked error, the SQL-free access log and no more.
    assert " DEBUG " in log and '"POST /graphql HTTP/1.1" 200' in log, log[-2000:]
    assert "unexpected OperationalError in createAnonymousSession" in log, log[-2000:]
    assert len(flow.tokens) >= 3, flow.tokens  # the guest's, the superadmin's and the user's
    leaks = [f"token {token[:6]}…" for token in flow.tokens if token in log]
    leaks += [f"password {password}" for password in PASSWORDS if password in log]
    leaks += [marker for marker in ("$argon2", "Traceback") if marker in log]
    assert leaks == [], f"in the server log: {leaks}"

    for answer in flow.answers:
        assert not SQL.search(answer), answer
        assert not any(marker in answer for marker in INTERNALS), answer
        assert not any(password in answer for password in PASSWORDS), answer
