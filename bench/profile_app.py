"""Where a request's CPU goes inside the application, without sockets, uvicorn or a second process.

    .venv/bin/python bench/profile_app.py [--scenario cached|active|whole|unknown|typename|uncached|create]
                                          [--requests 3000] [--cache memory|noop] [--top 30] [--lean-ab ROUNDS]

Builds the real Starlette app (server.app.create_app) on a fresh temporary SQLite database, runs
its lifespan, creates a pool of anonymous sessions, then calls the ASGI app directly in one event
loop, sequentially, first unprofiled (CPU microseconds per request) and then under cProfile (the
top functions by cumulative and by own time). Complements bench/run.py, whose numbers include the
HTTP server and the network stack; this one shows the cost of Starlette + Strawberry + services.

`--lean-ab ROUNDS` measures instead, in alternating rounds in the same process, the CPU per request
with the lean HTTP path of compiled plans (schema/compiled/lean.py) and without it (Strawberry's
view, from the same plans), and prints the medians: the lean path's gain, with the machine's
noise spread over both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LOOKUP_QUERY = "query($t:String!){ sessionFromToken(token:$t){ id expires user { id } } }"
ACTIVE_QUERY = "{ activeSession { id expires user { identifier } } }"
WHOLE_QUERY = (
    "query($t:String!){ sessionFromToken(token:$t){ cacheExpiry id token expires activeOrderId"
    " authenticationStrategy activeChannelId user { id identifier verified"
    " channelPermissions { id token code permissions } } } }"
)
CREATE_QUERY = "mutation { createAnonymousSession { id token } }"
LOGIN_QUERY = (
    "mutation($u:String!,$p:String!){ login(username:$u, password:$p) { __typename ... on CachedSession { token } } }"
)
SCENARIOS = ("cached", "active", "whole", "unknown", "typename", "uncached", "create")


async def call(
    app: Any, state: Mapping[str, Any] | None, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            *(headers or ()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state or {}),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def request_for(scenario: str, token: str, superadmin_token: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and extra headers of one request of `scenario` (`token`: one of the pool's)."""
    if scenario == "create":
        return json.dumps({"query": CREATE_QUERY}).encode(), []
    if scenario == "active":
        return json.dumps({"query": ACTIVE_QUERY}).encode(), [(b"authorization", f"Bearer {token}".encode())]
    if scenario == "whole":
        return json.dumps({"query": WHOLE_QUERY, "variables": {"t": superadmin_token}}).encode(), []
    if scenario == "unknown":
        return json.dumps({"query": LOOKUP_QUERY, "variables": {"t": f"unknown-{token}"}}).encode(), []
    if scenario == "typename":
        return json.dumps({"query": "{ __typename }"}).encode(), []
    return json.dumps({"query": LOOKUP_QUERY, "variables": {"t": token}}).encode(), []


async def main_async(args: argparse.Namespace) -> None:
    from server.app import create_app
    from server.settings import Settings

    folder = tempfile.mkdtemp(prefix="session-profile-")
    try:
        settings = Settings.from_env(
            {
                "DATABASE_URL": f"sqlite://{folder}/sessions.sqlite3",
                "SESSION_CACHE": args.cache,
                "SESSION_CACHE_NAMESPACE": f"bench-profile-{os.getpid()}",
                "LOGIN_RATE_LIMIT": "off",
                "SUPERADMIN_PASSWORD": "profile-not-the-default",
                "LOG_LEVEL": "warning",
            }
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app) as state:
            login = {"query": LOGIN_QUERY, "variables": {"u": "superadmin", "p": "profile-not-the-default"}}
            status, raw = await call(app, state, json.dumps(login).encode())
            superadmin_token = json.loads(raw)["data"]["login"]["token"]
            tokens = []
            for _ in range(args.pool):
                status, raw = await call(app, state, request_for("create", "", "")[0])
                tokens.append(json.loads(raw)["data"]["createAnonymousSession"]["token"])
            requests = [request_for(args.scenario, token, superadmin_token) for token in tokens]

            async def batch(count: int) -> None:
                for index in range(count):
                    status, raw = await call(app, state, *requests[index % len(requests)])
                    if status != 200 or b'"errors"' in raw:
                        raise SystemExit(f"request failed: {status} {raw[:300]!r}")

            await batch(min(500, args.requests))  # warm-up: caches, imports, parser/validation caches
            if args.lean_ab:
                await compare_lean(app, batch, args)
                return
            cpu, wall = time.process_time(), time.perf_counter()
            await batch(args.requests)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{args.scenario} (SESSION_CACHE={args.cache}): {args.requests} sequential requests, "
                f"{1e6 * cpu / args.requests:.0f} us CPU and {1e6 * wall / args.requests:.0f} us wall per request "
                f"(CPU includes threads, e.g. aiosqlite's)"
            )
            profiler = cProfile.Profile()
            profiler.enable()
            await batch(args.requests)
            profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        if args.output:
            stats.dump_stats(args.output)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def compare_lean(app: Any, batch: Any, args: argparse.Namespace) -> None:
    """CPU per request with and without the lean HTTP path, in alternating rounds (medians)."""
    from tests.schema.twin import graphql_view

    view = graphql_view(app)
    lean = view.lean
    if lean is None:
        raise SystemExit("this app has no lean path (no compiled path)")
    cpu: dict[str, list[float]] = {"lean": [], "view": []}
    for _ in range(args.lean_ab):
        for mode in cpu:
            view.lean = lean if mode == "lean" else None
            await batch(200)
            started = time.process_time()
            await batch(args.requests)
            cpu[mode].append(1e6 * (time.process_time() - started) / args.requests)
    view.lean = lean
    medians = {mode: statistics.median(values) for mode, values in cpu.items()}
    print(
        f"{args.scenario} (SESSION_CACHE={args.cache}): {args.lean_ab} rounds of {args.requests} requests each way,"
        f" median CPU per request: lean path {medians['lean']:.0f} us, Strawberry's view {medians['view']:.0f} us"
        f" ({100 * (1 - medians['lean'] / medians['view']):.0f} % less)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=SCENARIOS, default="cached")
    parser.add_argument(
        "--lean-ab", type=int, default=0, metavar="ROUNDS", help="compare with and without the lean path [off]"
    )
    parser.add_argument(
        "--cache", default=None, help="memory, noop or redis://127.0.0.1:6379/15 [noop for uncached, else memory]"
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--pool", type=int, default=200, help="anonymous sessions created first")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--output", default=None, help="also write the pstats file here")
    args = parser.parse_args()
    if args.cache is None:
        args.cache = "noop" if args.scenario == "uncached" else "memory"
    if args.cache.startswith("redis://"):
        from urllib.parse import urlsplit

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from load import ensure_loopback

        ensure_loopback(urlsplit(args.cache).hostname or "")
    elif args.cache not in ("memory", "noop"):
        parser.error("--cache takes memory, noop or redis://HOST:PORT/DB")
    os.chdir(REPO_ROOT)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
