"""Scale on PostgreSQL + Redis: lookups as the session table grows, the clean of a million expired
sessions while lookups are served, and the memory of the in-process cache holding 100,000 sessions.

    .venv/bin/python -m bench.scale [--quick] [--runs 5] [--duration 4] [--concurrency 4] [--sizes ...]

1. Lookups. One fresh PostgreSQL database per size (--sizes, 10^3 to 10^6 sessions), migrated by
   `python -m server migrate` and filled with INSERT ... SELECT generate_series: one session in five
   authenticated (a user holding a role on two channels), the others guests, each used within the last
   12 hours (so a lookup writes nothing), token `scale-<n>` stored as its SHA-256 digest as the service
   stores its own. Then one server per size, first with SESSION_CACHE=noop (every lookup reads the
   database through the token_hash index), then with Redis behind the in-process first tier, and
   --runs rounds of one generator run per size, sizes interleaved so that a burst of other work on
   the machine hits every size alike. Each run looks up the same number (--sample) of the table's
   tokens, drawn at random (seed 1), with sessionFromToken from --concurrency connections.
2. Memory. On the largest database, a server with SESSION_CACHE=memory and SESSION_CACHE_SIZE set to
   --memory-sessions (the default of 10,000 would evict) looks up that many distinct sessions: its
   VmRSS before and after, and a check through /metrics that a spread sample of them is answered from
   the cache.
3. Clean. A fresh database with --clean-expired expired and --clean-live live sessions, cleaned by
   `python -m server clean-sessions` (the clean job, with the Redis cache it forgets from) alone; then
   the same on a fresh copy while a SESSION_CACHE=noop and a Redis server serve lookups of live
   sessions in alternate windows of --window seconds (also measured before the clean). Its elapsed
   time runs from the command's start to its exit. `--only` runs some of the three parts.

Prints the figures against the targets (lookup p50 within 10 % from the smallest to the largest table,
clean under 60 s, RSS under 150 MB) and writes bench/results/<timestamp>-scale.json. The exit status
is 0 when every request succeeded and the clean removed every expired session; a missed target is
reported, not an error. See bench/README.md, "Scale".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Run as `-m bench.scale`, the bench modules (which import each other by bare name) need their folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from _common import BENCH_DIR, HOST, REPO_ROOT, BenchError, log
from load import Connection, build_request, ensure_loopback
from load_runs import run_generator, wait_idle
from report import machine_info, summarize_runs
from scenarios import LOOKUP_QUERY, graphql_body
from servers import (
    Server,
    forget_redis_generation,
    free_port,
    postgres_database,
    redis_info,
    server_env,
    server_python,
)

FLAT_WITHIN = 0.10
CLEAN_TARGET_SECONDS = 60.0
RSS_TARGET_MB = 150.0
EXPECT = '"sessionFromToken":{"id"'
CONFIGS = ("uncached", "cached")
PHASES = ("lookups", "memory", "clean")
QUICK = {
    "sizes": "1000,10000",
    "runs": 1,
    "duration": 1.0,
    "warmup": 0.5,
    "sample": 200,
    "memory_sessions": 2000,
    "clean_expired": 10_000,
    "clean_live": 1000,
    "window": 1.0,
    "windows_before": 1,
    "quiet_wait": 0.0,
}

REFERENCE_SQL = """
INSERT INTO channels (created_at, updated_at, code, token, is_default)
SELECT now(), now(), 'scale-channel-' || n, md5('scale-channel-' || n), false FROM generate_series(1, 4) AS n;
INSERT INTO roles (created_at, updated_at, code, description, permissions)
SELECT now(), now(), 'scale-role-' || n, '', '["ReadOrder","UpdateOrder","ReadSession"]'::jsonb
FROM generate_series(1, 8) AS n;
INSERT INTO role_channels (roles_id, channel_id)
SELECT r.id, c.id FROM roles r JOIN channels c
  ON c.code IN ('scale-channel-' || (1 + r.id % 4), 'scale-channel-' || (1 + (r.id + 1) % 4))
WHERE r.code LIKE 'scale-role-%';
INSERT INTO users (created_at, updated_at, identifier, password_hash, verified)
SELECT now() - interval '90 days', now(), 'scale-user-' || n || '@example.com', NULL, true
FROM generate_series(1, {users}) AS n;
INSERT INTO user_roles (users_id, role_id)
SELECT u.id, r.id FROM users u JOIN roles r ON r.code = 'scale-role-' || (1 + u.id % 8)
WHERE u.identifier LIKE 'scale-user-%';
"""
#: Sessions `scale-$1` to `scale-$2`; every fifth is authenticated, the user of `scale-n` is user
#: $3 + (n / 5) % $4 (about two sessions per user). `{when}` gives each its last use and expiry.
SESSIONS_SQL = """
INSERT INTO sessions (created_at, updated_at, token_hash, type, expires, last_active_at, invalidated,
                      authentication_strategy, user_id, remember_me, authenticated_at, seen_at,
                      client_address, user_agent)
SELECT a.last_active_at - interval '3 days', a.last_active_at, encode(sha256(('scale-' || n)::bytea), 'hex'),
       CASE WHEN n % 5 = 0 THEN 'authenticated' ELSE 'anonymous' END, e.expires, a.last_active_at, false,
       CASE WHEN n % 5 = 0 THEN 'native' END, CASE WHEN n % 5 = 0 THEN $3 + (n / 5) % $4 END, n % 7 <> 0,
       CASE WHEN n % 5 = 0 THEN a.last_active_at - interval '3 days' END, a.last_active_at,
       '192.0.2.' || (n % 250), $5
FROM generate_series($1::int, $2::int) AS n, {when}
"""
#: Used within the last 12 hours, so no lookup slides the expiry or refreshes last_active_at.
LIVE = (
    "LATERAL (SELECT now() - (n % 720) * interval '1 minute' AS last_active_at) AS a,"
    " LATERAL (SELECT a.last_active_at + interval '365 days' AS expires) AS e"
)
#: Expired from 1 hour to 30 days ago, after a year without use.
EXPIRED = (
    "LATERAL (SELECT now() - interval '1 hour' - (n % 43200) * interval '1 minute' AS expires) AS e,"
    " LATERAL (SELECT e.expires - interval '365 days' AS last_active_at) AS a"
)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items())
    )
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="sessions in the table, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per size and configuration [5]")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run [4]")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run [1]")
    parser.add_argument("--concurrency", type=int, default=4, help="keep-alive connections of the generator [4]")
    parser.add_argument("--sample", type=int, default=1000, help="tokens looked up per size [1000]")
    parser.add_argument("--memory-sessions", type=int, default=100_000, help="sessions cached in-process [100000]")
    parser.add_argument("--clean-expired", type=int, default=1_000_000, help="expired sessions to clean [1000000]")
    parser.add_argument("--clean-live", type=int, default=10_000, help="live sessions beside them [10000]")
    parser.add_argument(
        "--clean-batch-size", type=int, default=5000, help="clean-sessions --batch-size [5000, the service's default]"
    )
    parser.add_argument("--window", type=float, default=2.0, help="seconds per lookup window around the clean [2]")
    parser.add_argument("--windows-before", type=int, default=3, help="windows per configuration before the clean")
    parser.add_argument("--quiet-wait", type=float, default=5.0, help="wait up to this long for an idle machine [5]")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds in-flight requests may take after a run")
    parser.add_argument("--only", default=",".join(PHASES), help=f"which parts, comma-separated [{','.join(PHASES)}]")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the servers and the clean command (repeatable)",
    )
    parser.add_argument("--pg-admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if parser.get_default(name) == getattr(args, name):
                setattr(args, name, value)
    args.size_list = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    if not args.size_list or args.size_list[0] < 1 or min(args.runs, args.concurrency, args.sample) < 1:
        parser.error("--sizes, --runs, --concurrency and --sample must be positive")
    if not 0 < args.memory_sessions <= args.size_list[-1]:
        parser.error("--memory-sessions must be positive and at most the largest size")
    for option, url in (("--pg-admin-url", args.pg_admin_url), ("--redis-url", args.redis_url)):
        try:
            ensure_loopback(urlsplit(url).hostname or "")
        except SystemExit:
            parser.error(f"{option}: only a loopback address is accepted")
    args.phases = [phase for phase in args.only.split(",") if phase.strip()]
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--only takes some of {','.join(PHASES)}")
    if any("=" not in item or not item.partition("=")[0] for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    # What servers.server_env reads (besides --server-env).
    args.cache_namespace = f"scale-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    args.server_log_level = "warning"
    args.password = "scale-" + secrets.token_urlsafe(18)
    return args


# --------------------------------------------------------------------------------------------
# databases


def _service_env(args: argparse.Namespace, database_url: str, cache: str, namespace: str) -> dict[str, str]:
    env = server_env(args, database_url, cache, args.password, free_port())
    env["SESSION_CACHE_NAMESPACE"] = f"{args.cache_namespace}-{namespace}"
    return env


def prepare_database(args: argparse.Namespace, database_url: str, live: int, expired: int = 0) -> float:
    """Migrate with the service's own command, then fill; the seconds the fill took."""
    subprocess.run(
        [server_python(), "-m", "server", "migrate"],
        cwd=REPO_ROOT,
        env=_service_env(args, database_url, "noop", "migrate"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return asyncio.run(_fill(database_url, live, expired))


async def _fill(database_url: str, live: int, expired: int) -> float:
    started = time.monotonic()
    users = max(1, (live + expired) // 10)
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.execute(REFERENCE_SQL.format(users=users))
        first_user = await connection.fetchval("SELECT min(id) FROM users WHERE identifier LIKE 'scale-user-%'")
        await connection.execute(SESSIONS_SQL.format(when=LIVE), 1, live, first_user, users, USER_AGENT)
        if expired:
            await connection.execute(
                SESSIONS_SQL.format(when=EXPIRED), live + 1, live + expired, first_user, users, USER_AGENT
            )
        await connection.execute("VACUUM ANALYZE")
        count = await connection.fetchval("SELECT count(*) FROM sessions")
    finally:
        await connection.close()
    if count != live + expired:
        raise BenchError(f"filled {count} sessions, expected {live + expired}")
    return round(time.monotonic() - started, 1)


def postgres_version(admin_url: str) -> str:
    async def ask() -> str:
        connection = await asyncpg.connect(admin_url, timeout=10)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    return asyncio.run(ask())


async def _session_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS sessions, count(*) FILTER (WHERE expires <= now()) AS expired FROM sessions"
        )
        return dict(row)
    finally:
        await connection.close()


# --------------------------------------------------------------------------------------------
# servers and lookups


def start_servers(servers: Sequence[Server]) -> None:
    """Start them side by side (each waits for its /health)."""
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.start(), servers))


def tokens_of(numbers: Sequence[int]) -> list[str]:
    return [f"scale-{n}" for n in numbers]


def sample_of(first: int, last: int, count: int) -> list[int]:
    return sorted(random.Random(1).sample(range(first, last + 1), min(count, last - first + 1)))


async def look_up_all(port: int, tokens: Sequence[str], connections: int = 16) -> None:
    """Look every token up once (so it is cached), `connections` at a time; each must be found."""

    async def walk(chunk: Sequence[str]) -> None:
        connection = Connection(HOST, port)
        try:
            for token in chunk:
                body = graphql_body(LOOKUP_QUERY, {"t": token}).encode()
                status, _, answer = await connection.request(build_request(HOST, port, "/graphql", body))
                if status != 200 or EXPECT.encode() not in answer:
                    raise BenchError(f"lookup of a stored session failed: HTTP {status} {answer[:300]!r}")
        finally:
            connection.close()

    await asyncio.gather(*(walk(tokens[index::connections]) for index in range(connections)))


async def first_tier_lookups(port: int) -> float:
    """The server's count of lookups answered from its in-process cache (/metrics)."""
    connection = Connection(HOST, port)
    try:
        raw = f"GET /metrics HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        status, _, body = await connection.request(raw)
    finally:
        connection.close()
    found = re.search(rb'session_service_session_lookups_total\{outcome="first_tier"\} (\S+)', body)
    if status != 200 or found is None:
        raise BenchError(f"/metrics answered {status} without the first_tier lookup count")
    return float(found.group(1))


def lookup_job(args: argparse.Namespace, server: Server, tokens: Sequence[str], duration: float) -> dict[str, Any]:
    return {
        "host": HOST,
        "port": server.port,
        "concurrency": args.concurrency,
        "warmup": min(args.warmup, duration),
        "duration": duration,
        "bodies": [graphql_body(LOOKUP_QUERY, {"t": token}) for token in tokens],
        "expect": EXPECT,
        "server_pid": server.pid,
        "grace": args.grace,
        "max_requests": 5_000_000,
    }


def measured(run: dict[str, Any], label: str) -> dict[str, Any]:
    latency = run["latency_ms"]
    log(
        f"{label}: {run['requests_per_second']} req/s, p50 {latency['p50']} ms, p99 {latency['p99']} ms,"
        f" errors {run['errors']}, server CPU {run['server_cpu_percent']}%, others {run['other_cpu_percent']}%"
    )
    if run["errors"]:
        log(f"  error samples: {run['error_samples']}")
    return run


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary = summarize_runs(runs)
    summary["p99_ms_max"] = max((run["latency_ms"]["p99"] or 0.0 for run in runs), default=None)
    return summary


# --------------------------------------------------------------------------------------------
# the three measurements


def measure_lookups(args: argparse.Namespace, databases: dict[int, str], log_dir: Path) -> dict[str, Any]:
    samples = {size: tokens_of(sample_of(1, size, args.sample)) for size in args.size_list}
    result: dict[str, Any] = {"sample": args.sample, "concurrency": args.concurrency, "runs": args.runs}
    for config in CONFIGS:
        cache = "noop" if config == "uncached" else args.redis_url
        servers = {
            size: Server(f"{config}-{size}", _service_env(args, url, cache, f"{config}-{size}"), log_dir)
            for size, url in databases.items()
        }
        runs: dict[int, list[dict[str, Any]]] = {size: [] for size in servers}
        try:
            log(f"starting {len(servers)} servers, SESSION_CACHE={cache}")
            start_servers(list(servers.values()))
            for size, server in servers.items():
                asyncio.run(look_up_all(server.port, samples[size]))
            order = list(servers.items())
            for index in range(args.runs):
                # Each round starts at another size, so no size always runs first (after the idle wait).
                shift = index % len(order)
                for size, server in order[shift:] + order[:shift]:
                    before = wait_idle(server.pid, args.quiet_wait)
                    run = run_generator(lookup_job(args, server, samples[size], args.duration))
                    run["before_run"] = before
                    runs[size].append(measured(run, f"{config} {size:,} sessions, run {index + 1}/{args.runs}"))
        finally:
            for server in servers.values():
                server.stop()
            if cache != "noop":
                for size in servers:
                    forget_redis_generation(cache, f"{args.cache_namespace}-{config}-{size}")
        result[config] = {str(size): summary_of(size_runs) for size, size_runs in runs.items()}
        result[config + "_runs"] = {str(size): size_runs for size, size_runs in runs.items()}
    result["flatness"] = {config: flatness(result[config]) for config in CONFIGS}
    return result


def flatness(by_size: dict[str, dict[str, Any]]) -> dict[str, Any]:
    p50 = [summary["p50_ms_median"] for summary in by_size.values()]
    change = p50[-1] / p50[0] - 1.0
    return {
        "p50_ms_smallest": p50[0],
        "p50_ms_largest": p50[-1],
        "change": round(change, 4),
        "spread": round(max(p50) / min(p50) - 1.0, 4),
        "within_target": abs(change) <= FLAT_WITHIN,
    }


def measure_memory(args: argparse.Namespace, database_url: str, log_dir: Path) -> dict[str, Any]:
    count = args.memory_sessions
    env = _service_env(args, database_url, "memory", "memory")
    env["SESSION_CACHE_SIZE"] = str(count)
    server = Server("memory", env, log_dir)
    tokens = tokens_of(sample_of(1, args.size_list[-1], count))
    check = tokens[:: max(1, len(tokens) // 1000)]
    try:
        server.start()
        started_rss = rss_mb(server.pid)
        began = time.monotonic()
        asyncio.run(look_up_all(server.port, tokens))
        filled_seconds = time.monotonic() - began
        after_rss = rss_mb(server.pid)
        hits_before = asyncio.run(first_tier_lookups(server.port))
        asyncio.run(look_up_all(server.port, check))
        hits = asyncio.run(first_tier_lookups(server.port)) - hits_before
        high_water = rss_mb(server.pid, "VmHWM")
    finally:
        server.stop()
    return {
        "sessions": count,
        "session_cache_size": count,
        "fill_seconds": round(filled_seconds, 1),
        "rss_mb_at_start": started_rss,
        "rss_mb": after_rss,
        "rss_mb_high_water": high_water,
        "check_lookups": len(check),
        "check_answered_from_cache": int(hits),
        "within_target": after_rss < RSS_TARGET_MB,
    }


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) * 1024 / 1e6, 1)
    raise BenchError(f"no {field} in /proc/{pid}/status")


def measure_clean(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """The clean alone, then (on a fresh copy of the same data) while lookups are served."""
    alone = clean_once(args, log_dir, serve_lookups=False)
    served = clean_once(args, log_dir, serve_lookups=True)
    return {"alone": alone, "with_lookups": served, "within_target": served["elapsed_s"] < CLEAN_TARGET_SECONDS}


def clean_once(args: argparse.Namespace, log_dir: Path, serve_lookups: bool) -> dict[str, Any]:
    live, expired = args.clean_live, args.clean_expired
    with postgres_database(args.pg_admin_url, "scale_clean") as (database_url, _):
        log(f"filling the clean's database: {expired:,} expired and {live:,} live sessions")
        fill_seconds = prepare_database(args, database_url, live, expired)
        servers = {
            config: Server(
                f"clean-{config}",
                _service_env(args, database_url, "noop" if config == "uncached" else args.redis_url, "clean"),
                log_dir,
            )
            for config in (CONFIGS if serve_lookups else ())
        }
        tokens = tokens_of(sample_of(1, live, args.sample))
        command = [server_python(), "-m", "server", "clean-sessions", "--batch-size", str(args.clean_batch_size)]
        clean_env = _service_env(args, database_url, args.redis_url, "clean")
        before: dict[str, list[dict[str, Any]]] = {config: [] for config in servers}
        during: dict[str, list[dict[str, Any]]] = {config: [] for config in servers}
        try:
            if servers:
                start_servers(list(servers.values()))
            for server in servers.values():
                asyncio.run(look_up_all(server.port, tokens))
            for index in range(args.windows_before if servers else 0):
                for config, server in servers.items():
                    wait_idle(server.pid, args.quiet_wait)
                    run = run_generator(lookup_job(args, server, tokens, args.window))
                    before[config].append(measured(run, f"before the clean, {config}, window {index + 1}"))
            log(
                f"clean-sessions --batch-size {args.clean_batch_size} "
                + ("with lookups served" if servers else "alone")
            )
            clean = CleanProcess(command, clean_env)
            while servers and clean.running():
                for config, server in servers.items():
                    if not clean.running():
                        break
                    run = run_generator(lookup_job(args, server, tokens, args.window))
                    during[config].append(measured(run, f"during the clean, {config}"))
            elapsed, output = clean.result()
            log(f"clean-sessions took {elapsed:.1f} s")
            startup, _ = CleanProcess(command, clean_env).result()
        finally:
            for server in servers.values():
                server.stop()
            forget_redis_generation(args.redis_url, f"{args.cache_namespace}-clean")
        removed = re.search(r"removed (\d+) sessions", output)
        left = asyncio.run(_session_counts(database_url))
    result: dict[str, Any] = {
        "expired": expired,
        "live": live,
        "batch_size": args.clean_batch_size,
        "fill_seconds": fill_seconds,
        "elapsed_s": round(elapsed, 2),
        "elapsed_with_nothing_to_clean_s": round(startup, 2),
        "removed": int(removed.group(1)) if removed else None,
        "left": left,
        "cache_timeouts_logged": output.count("TimeoutError"),
    }
    if servers:
        result["lookups"] = {
            config: {
                "before": summary_of(before[config]),
                "during": summary_of(during[config]) if during[config] else None,
            }
            for config in servers
        }
        result["windows"] = {"before": before, "during": during}
    return result


class CleanProcess:
    """`python -m server clean-sessions` in a subprocess, its elapsed time taken at its exit by a thread."""

    def __init__(self, command: list[str], env: dict[str, str], timeout: float = 900.0) -> None:
        self._started = time.monotonic()
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._elapsed: float | None = None
        self._output = ""
        self._timeout = timeout
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        try:
            out, _ = self._process.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            out, _ = self._process.communicate()
        self._elapsed = time.monotonic() - self._started
        self._output = out.decode(errors="replace")

    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> tuple[float, str]:
        self._thread.join()
        if self._process.returncode != 0 or self._elapsed is None:
            raise BenchError(f"clean-sessions exited with {self._process.returncode}: {self._output[-2000:]}")
        return self._elapsed, self._output


# --------------------------------------------------------------------------------------------
# the report


def print_report(result: dict[str, Any], path: Path) -> None:
    def fmt(value: float | None, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    lookups = result.get("lookups")
    if lookups:
        print(
            f"\nlookups (sessionFromToken of {lookups['sample']} stored sessions, {lookups['concurrency']} connections,"
            f" medians of {lookups['runs']} runs)"
        )
        header = (
            f"{'config':<9} {'sessions':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'srv ms/req':>10} {'other CPU':>9} {'errors':>6}"
        )
        print(header + "\n" + "-" * len(header))
        for config in CONFIGS:
            for size, s in lookups[config].items():
                print(
                    f"{config:<9} {int(size):>10,} {fmt(s['requests_per_second_median'], '.0f'):>8}"
                    f" {fmt(s['p50_ms_median']):>8} {fmt(s['p99_ms_median']):>8}"
                    f" {fmt(s['server_cpu_ms_per_request_median'], '.3f'):>10}"
                    f" {fmt(s['other_cpu_percent_median'], '.0f') + '%':>9} {s['errors']:>6}"
                )
        for config, flat in lookups["flatness"].items():
            print(
                f"{config}: p50 {flat['p50_ms_smallest']} ms -> {flat['p50_ms_largest']} ms"
                f" ({100 * flat['change']:+.1f} %, spread over all sizes {100 * flat['spread']:.1f} %):"
                f" {'within' if flat['within_target'] else 'NOT within'} {100 * FLAT_WITHIN:.0f} %"
            )
    memory = result.get("memory")
    if memory:
        print(
            f"\nmemory: SESSION_CACHE=memory, SESSION_CACHE_SIZE={memory['session_cache_size']}: VmRSS"
            f" {memory['rss_mb_at_start']} MB at start, {memory['rss_mb']} MB with {memory['sessions']:,} sessions"
            f" cached (high water {memory['rss_mb_high_water']} MB); {memory['check_answered_from_cache']} of"
            f" {memory['check_lookups']} re-lookups answered from the cache;"
            f" {'under' if memory['within_target'] else 'NOT under'} {RSS_TARGET_MB:.0f} MB"
        )
    clean = result.get("clean")
    if clean:
        print(f"\nclean ({clean['alone']['expired']:,} expired and {clean['alone']['live']:,} live sessions):")
        for label, run in (("alone", clean["alone"]), ("while lookups are served", clean["with_lookups"])):
            print(
                f"  {label}: {run['removed']:,} removed in {run['elapsed_s']} s (batch {run['batch_size']};"
                f" the command takes {run['elapsed_with_nothing_to_clean_s']} s with nothing to clean),"
                f" {run['left']['sessions']:,} sessions left, {run['cache_timeouts_logged']} cache timeouts logged"
            )
        print(
            f"  target: {'under' if clean['within_target'] else 'NOT under'} {CLEAN_TARGET_SECONDS:.0f} s"
            " while lookups are served"
        )
        for config, phases in clean["with_lookups"]["lookups"].items():
            cells = []
            for phase in ("before", "during"):
                s = phases[phase]
                if s:
                    cells.append(
                        f"{phase}: p50 {fmt(s['p50_ms_median'])} ms, p99 {fmt(s['p99_ms_median'])} ms"
                        f" (max {fmt(s['p99_ms_max'])}), {fmt(s['requests_per_second_median'], '.0f')} req/s"
                        f" [{s['runs']} windows]"
                    )
            print(f"  lookups {config}: " + "; ".join(cells))
    print(f"results: {path}")


def errors_of(result: dict[str, Any]) -> int:
    runs = [
        run
        for config in CONFIGS
        for size_runs in result.get("lookups", {}).get(config + "_runs", {}).values()
        for run in size_runs
    ]
    windows = result.get("clean", {}).get("with_lookups", {}).get("windows", {})
    runs += [run for phase in windows.values() for config_runs in phase.values() for run in config_runs]
    return sum(run["errors"] for run in runs)


def cleaned_everything(result: dict[str, Any], expired: int) -> bool:
    runs = result.get("clean", {}).values()
    return all(run["removed"] == expired and run["left"]["expired"] == 0 for run in runs if isinstance(run, dict))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"{dt.datetime.now():%Y%m%d-%H%M%S}-scale.json"
    result: dict[str, Any] = {
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.scale", *(sys.argv[1:] if argv is None else argv)]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "password"},
        "machine": machine_info(server_python()),
        "postgres_version": postgres_version(args.pg_admin_url),
        "redis": redis_info(args.redis_url),
        "targets": {"p50_within": FLAT_WITHIN, "clean_seconds": CLEAN_TARGET_SECONDS, "rss_mb": RSS_TARGET_MB},
    }
    log_dir = Path(tempfile.mkdtemp(prefix="session-bench-scale-"))
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            databases: dict[int, str] = {}
            fills: dict[str, float] = {}
            sizes = (
                args.size_list if "lookups" in args.phases else args.size_list[-1:] if "memory" in args.phases else []
            )
            for size in sizes:
                url, _ = stack.enter_context(postgres_database(args.pg_admin_url, f"scale_{size}"))
                log(f"filling {size:,} sessions")
                fills[str(size)] = prepare_database(args, url, size)
                databases[size] = url
            if "lookups" in args.phases:
                result["lookups"] = measure_lookups(args, databases, log_dir)
                result["lookups"]["fill_seconds"] = fills
            if "memory" in args.phases:
                log(f"memory: {args.memory_sessions:,} sessions cached in-process")
                result["memory"] = measure_memory(args, databases[args.size_list[-1]], log_dir)
        if "clean" in args.phases:
            result["clean"] = measure_clean(args, log_dir)
    finally:
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["finished_at"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        path.write_text(json.dumps(result, indent=2) + "\n")
        shutil.rmtree(log_dir, ignore_errors=True)
    print_report(result, path)
    return 0 if errors_of(result) == 0 and cleaned_everything(result, args.clean_expired) else 1


if __name__ == "__main__":
    sys.exit(main())
