"""Where a request's CPU goes inside the application, without sockets, uvicorn or a second process.

    .venv/bin/python bench/profile_app.py [--scenario cached|uncached|create] [--requests 3000]
                                          [--cache memory|noop] [--top 30]

Builds the real Starlette app (server.app.create_app) on a fresh temporary SQLite database, runs
its lifespan, creates a pool of anonymous sessions, then calls the ASGI app directly in one event
loop, sequentially, first unprofiled (CPU microseconds per request) and then under cProfile (the
top functions by cumulative and by own time). Complements bench/run.py, whose numbers include the
HTTP server and the network stack; this one shows the cost of Starlette + Strawberry + services.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LOOKUP_QUERY = "query($t:String!){ sessionFromToken(token:$t){ id expires user { id } } }"
CREATE_QUERY = "mutation { createAnonymousSession { id token } }"


async def call(app: Any, state: Mapping[str, Any] | None, body: bytes) -> tuple[int, bytes]:
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


def body_for(scenario: str, token: str) -> bytes:
    if scenario == "create":
        return json.dumps({"query": CREATE_QUERY}).encode()
    return json.dumps({"query": LOOKUP_QUERY, "variables": {"t": token}}).encode()


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
            tokens = []
            for _ in range(args.pool):
                status, raw = await call(app, state, body_for("create", ""))
                tokens.append(json.loads(raw)["data"]["createAnonymousSession"]["token"])
            bodies = [body_for(args.scenario, token) for token in tokens]

            async def batch(count: int) -> None:
                for index in range(count):
                    status, raw = await call(app, state, bodies[index % len(bodies)])
                    if status != 200 or b'"errors"' in raw:
                        raise SystemExit(f"request failed: {status} {raw[:300]!r}")

            await batch(min(500, args.requests))  # warm-up: caches, imports, parser/validation caches
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("cached", "uncached", "create"), default="cached")
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
