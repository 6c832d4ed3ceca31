"""How long a revocation on one instance takes to reach another: two real servers, one database.

    .venv/bin/python bench/propagation.py [--configs memory-notify,redis-two-tiers] [--revocations 1000]

For each configuration it creates a PostgreSQL database, starts servers A and B
(`SESSION_CACHE=memory`, kept coherent by LISTEN/NOTIFY; or `SESSION_CACHE=redis://…` with the
first tier, kept coherent by pub/sub), creates `--revocations` guest sessions on A and looks each up
on B, so that B holds every one in its first tier. Then, one session at a time, it logs the session
out on A and polls B (`sessionFromToken`, back to back on one keep-alive connection) until B answers
null. The time measured runs from the moment A's answer arrived to the moment B's first null answer
arrived, so it includes one lookup on B (its own latency is printed beside it). Prints p50, p90, p99
and the maximum, and writes them to bench/results/<timestamp>-propagation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import HOST, REPO_ROOT, BenchError, log
from load import Connection, build_request
from servers import Server, free_port, postgres_database

CONFIGS = {
    "memory-notify": {"SESSION_CACHE": "memory"},
    "redis-two-tiers": {"SESSION_CACHE": "{redis}"},
}
CREATE = "mutation { createAnonymousSession { token } }"
LOOKUP = "query($t:String!){ sessionFromToken(token:$t){ id } }"
LOGOUT = "mutation { logout { success } }"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--revocations", type=int, default=1000)
    parser.add_argument("--pg-admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name in args.configs.split(","):
        if name not in CONFIGS:
            raise SystemExit(f"unknown configuration {name!r}: expected one of {', '.join(CONFIGS)}")
        results[name] = _measure(name, args)
        _print(name, results[name])
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-propagation.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"results: {path}")
    return 0


def _measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    namespace = f"propagation-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    settings = {key: value.format(redis=args.redis_url) for key, value in CONFIGS[name].items()}
    with postgres_database(args.pg_admin_url, "propagation") as (database_url, _):
        servers = []
        try:
            for label in ("a", "b"):
                env = _env(database_url, namespace, password, free_port(), settings)
                server = Server(f"{name}-{label}", env, args.output_dir)
                servers.append(server)
                server.start()
            a, b = servers
            return asyncio.run(_revocations(a.port, b.port, args.revocations))
        finally:
            for server in servers:
                server.stop()


def _env(database_url: str, namespace: str, password: str, port: int, settings: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        HOST=HOST,
        PORT=str(port),
        DATABASE_URL=database_url,
        SESSION_CACHE_NAMESPACE=namespace,
        SUPERADMIN_PASSWORD=password,
        LOG_LEVEL="warning",
        LOGIN_RATE_LIMIT="off",
        TOKEN_METHOD="bearer",
        **settings,
    )
    return env


async def _graphql(connection: Connection, port: int, query: str, variables: Any = None, token: str = "") -> Any:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status, _, raw = await connection.request(build_request(HOST, port, "/graphql", body, headers))
    answer = json.loads(raw)
    if status != 200 or answer.get("errors"):
        raise BenchError(f"HTTP {status}: {raw[:300]!r}")
    return answer["data"]


async def _revocations(port_a: int, port_b: int, count: int) -> dict[str, Any]:
    on_a, on_b = Connection(HOST, port_a), Connection(HOST, port_b)
    try:
        tokens = [(await _graphql(on_a, port_a, CREATE))["createAnonymousSession"]["token"] for _ in range(count)]
        lookups = []
        for token in tokens:
            started = time.perf_counter()
            if (await _graphql(on_b, port_b, LOOKUP, {"t": token}))["sessionFromToken"] is None:
                raise BenchError("a session created on A is unknown on B")
            lookups.append(time.perf_counter() - started)
        delays, polls = [], []
        for token in tokens:
            await _graphql(on_a, port_a, LOGOUT, token=token)
            revoked = time.perf_counter()
            tries = 0
            while (await _graphql(on_b, port_b, LOOKUP, {"t": token}))["sessionFromToken"] is not None:
                tries += 1
                if time.perf_counter() - revoked > 10:
                    raise BenchError("a revocation did not reach B within 10 s")
            delays.append(time.perf_counter() - revoked)
            polls.append(tries)
    finally:
        on_a.close()
        on_b.close()
    return {
        "revocations": count,
        "delay_ms": _percentiles(delays),
        "lookup_on_b_ms": _percentiles(lookups),
        "revocations_seen_at_first_poll": sum(1 for tries in polls if tries == 0),
    }


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(cut[49] * 1000, 3),
        "p90": round(cut[89] * 1000, 3),
        "p99": round(cut[98] * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
    }


def _print(name: str, result: dict[str, Any]) -> None:
    delay, lookup = result["delay_ms"], result["lookup_on_b_ms"]
    print(
        f"{name:16} revocation on A seen on B: p50 {delay['p50']:.2f} ms, p90 {delay['p90']:.2f} ms,"
        f" p99 {delay['p99']:.2f} ms, max {delay['max']:.2f} ms over {result['revocations']}"
        f" ({result['revocations_seen_at_first_poll']} at the first poll);"
        f" one lookup on B: p50 {lookup['p50']:.2f} ms, p99 {lookup['p99']:.2f} ms"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
