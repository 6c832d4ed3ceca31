"""The scenarios: their GraphQL operations, the data they need (prepared over HTTP) and their load jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from typing import Any

from _common import HOST, BenchError
from load import Connection, build_request
from servers import Server

LOOKUP_QUERY = "query($t:String!){ sessionFromToken(token:$t){ id expires user { id } } }"
ACTIVE_QUERY = "{ activeSession { id expires user { identifier } } }"
WHOLE_QUERY = (
    "query($t:String!){ sessionFromToken(token:$t){ cacheExpiry id token expires activeOrderId"
    " authenticationStrategy activeChannelId user { id identifier verified"
    " channelPermissions { id token code permissions } } } }"
)
TYPENAME_QUERY = "{ __typename }"
CREATE_QUERY = "mutation { createAnonymousSession { id token } }"
LOGIN_QUERY = "mutation($u:String!,$p:String!){ login(username:$u, password:$p) { __typename } }"
LOGIN_TOKEN_QUERY = (
    "mutation($u:String!,$p:String!){ login(username:$u, password:$p) { __typename ... on CachedSession { token } } }"
)

#: The server configuration of the controls (bench/controls.py): no database, no session service.
CONTROLS = "controls"
#: scenario -> (server configuration, description)
SCENARIOS: dict[str, tuple[str, str]] = {
    "cached": ("main", "sessionFromToken, token already cached"),
    "active": ("main", "activeSession { id expires user { identifier } }, bearer token already cached"),
    "whole": ("main", "sessionFromToken: the whole CachedSession (user, channelPermissions), superadmin's token"),
    "unknown": ("main", "sessionFromToken of tokens that match no session"),
    "typename": ("main", "{ __typename } through the service: its own floor"),
    "uncached": ("nocache", "sessionFromToken, SESSION_CACHE=noop (database)"),
    # The cache tiers side by side: with --backend postgres `cached` runs on Redis behind the in-process
    # first tier; these two run the same requests on the first tier alone and on Redis alone.
    "cached-memory": ("memory", "sessionFromToken, token cached; SESSION_CACHE=memory (NOTIFY on PostgreSQL)"),
    "cached-redis": ("redis-alone", "sessionFromToken, token cached; Redis without the first tier"),
    "create": ("main", "createAnonymousSession"),
    "login": ("main", "login (superadmin, Argon2)"),
    "starlette": (CONTROLS, "control: a bare Starlette route answering a constant JSON body"),
    "strawberry": (CONTROLS, "control: { __typename } through Strawberry's stock view, the service's extensions"),
}
#: The scenarios every other is compared with (`make bench` prints each path's ratio to them).
CONTROL_SCENARIOS = ("starlette", "strawberry")


def graphql_body(query: str, variables: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    return json.dumps(payload, separators=(",", ":"))


async def _graphql(connection: Connection, port: int, query: str, variables: dict[str, Any] | None = None) -> Any:
    raw = build_request(HOST, port, "/graphql", graphql_body(query, variables).encode())
    status, _, body = await asyncio.wait_for(connection.request(raw), 30)
    if status != 200:
        raise BenchError(f"HTTP {status}: {body[:300]!r}")
    answer = json.loads(body)
    if answer.get("errors"):
        raise BenchError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


async def prepare(port: int, username: str, password: str, tokens: int) -> dict[str, Any]:
    """Check the superadmin login, then create `tokens` anonymous sessions (8 connections)."""
    connection = Connection(HOST, port)
    try:
        data = await _graphql(connection, port, LOGIN_TOKEN_QUERY, {"u": username, "p": password})
        if data["login"]["__typename"] != "CachedSession":
            raise BenchError(f"superadmin login failed: {data}")
        superadmin_token = data["login"]["token"]
        data = await _graphql(connection, port, WHOLE_QUERY, {"t": superadmin_token})
        if not (data["sessionFromToken"] or {}).get("user"):
            raise BenchError(f"the superadmin's token did not resolve to its user: {data}")
    finally:
        connection.close()

    created: list[str] = []

    async def creator(count: int) -> None:
        conn = Connection(HOST, port)
        try:
            for _ in range(count):
                data = await _graphql(conn, port, CREATE_QUERY)
                created.append(data["createAnonymousSession"]["token"])
        finally:
            conn.close()

    workers = 8
    await asyncio.gather(*(creator(tokens // workers + (i < tokens % workers)) for i in range(workers)))
    # One lookup per token, checked: every token resolves (and is cached where a cache exists).
    connection = Connection(HOST, port)
    try:
        for token in created[:50]:
            data = await _graphql(connection, port, LOOKUP_QUERY, {"t": token})
            if not data["sessionFromToken"]:
                raise BenchError(f"a fresh token did not resolve: {data}")
    finally:
        connection.close()
    unknown = [f"unknown-{secrets.token_urlsafe(24)}" for _ in range(tokens)]
    return {"tokens": created, "superadmin_token": superadmin_token, "unknown_tokens": unknown}


def scenario_job(
    name: str, server: Server, prepared: dict[str, Any], args: argparse.Namespace, username: str, password: str
) -> dict[str, Any]:
    path = "/graphql"
    if name in ("cached", "uncached", "cached-memory", "cached-redis"):
        bodies = [graphql_body(LOOKUP_QUERY, {"t": token}) for token in prepared["tokens"]]
        expect = '"sessionFromToken":{"id"'
    elif name == "active":
        # One body; the token travels in the Authorization header, one request per token in turn.
        bodies, expect = [graphql_body(ACTIVE_QUERY)], '"activeSession":{"id"'
        header_sets = [{"Authorization": f"Bearer {token}"} for token in prepared["tokens"]]
    elif name == "whole":
        bodies = [graphql_body(WHOLE_QUERY, {"t": prepared["superadmin_token"]})]
        expect = '"channelPermissions":[{"id"'
    elif name == "unknown":
        bodies = [graphql_body(LOOKUP_QUERY, {"t": token}) for token in prepared["unknown_tokens"]]
        expect = '"sessionFromToken":null'
    elif name in ("typename", "strawberry"):
        bodies, expect = [graphql_body(TYPENAME_QUERY)], '{"data":{"__typename":"Query"}}'
    elif name == "starlette":
        path, bodies, expect = "/starlette", [graphql_body(TYPENAME_QUERY)], '{"data":{"__typename":"Query"}}'
    elif name == "create":
        bodies, expect = [graphql_body(CREATE_QUERY)], '"createAnonymousSession":{"id"'
    elif name == "login":
        bodies, expect = [graphql_body(LOGIN_QUERY, {"u": username, "p": password})], '"__typename":"CachedSession"'
    else:
        raise BenchError(f"unknown scenario {name}")
    if name != "active":
        header_sets = []
    concurrency, warmup, duration = args.concurrency, args.warmup, args.duration
    if name == "login":
        # Argon2 makes a login cost ~0.2-0.4 s of CPU: at 32 connections the first answers would come
        # after the window closed. Throughput is the same at any concurrency once the CPUs are busy.
        concurrency = args.login_concurrency or args.concurrency
        warmup = max(warmup, 2.0)
        duration = args.login_duration or duration
    return {
        "host": HOST,
        "port": server.port,
        "path": path,
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "bodies": bodies,
        "header_sets": header_sets,
        "expect": expect,
        "server_pid": server.pid,
        "grace": args.grace,
        "max_requests": args.max_requests,
    }
