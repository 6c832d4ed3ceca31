"""Login storm: do cached lookups stay fast while logins hash passwords as fast as they can?

    .venv/bin/python -m bench.login_storm [--backend sqlite|postgres|both] [--runs 3] [--duration 8]
                                          [--storm 64] [--login-concurrency 8] [--probe-rate 200]

For each backend it starts the real server (`<venv python> -m server`, a fresh SQLite file with the
in-process cache, or a fresh PostgreSQL database with Redis; production Argon2 costs; a random
SUPERADMIN_PASSWORD; LOGIN_RATE_LIMIT=off), prepares a pool of cached anonymous sessions and
`--storm` users (createUser, one password), then for each of `--runs` runs:

1. idle: cached lookups (`sessionFromToken`) at a fixed rate, `--probe-rate` per second over 4
   keep-alive connections, for `--duration` seconds. The probe is open-loop: each request has its
   planned send time and its latency counts from then, so a stalled server cannot hide its stall
   by delaying the probe's next requests.
2. storm: the same probe while `--storm` connections (64) log those users in back to back, each
   connection its own user in turn, from a load generator in a process of its own (bench/load.py).
   `--failing-storm` makes them wrong passwords: the hashing without a session's writes.
3. throughput: the same logins alone at `--login-concurrency` connections (8), closed loop.

It prints, per backend, the medians over the runs: lookup p50/p99 idle and in the storm, the
ratio of the p99s (target: at most 2), login req/s with p50/p99 and server CPU ms per login, and
the machine's CPU left to other processes (a shared machine makes the figures noisy). Results go
to bench/results/<timestamp>-login-storm.json. Exit status 0 only when no request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts

from _common import BENCH_DIR, HOST, BenchError, log
from load import Connection, build_request, cpu_seconds_of, percentile, system_cpu_ticks
from load_runs import Generator, run_generator, wait_idle
from scenarios import LOGIN_QUERY, LOOKUP_QUERY, graphql_body, prepare
from servers import Server, free_port, postgres_database, server_env, sqlite_database

USERNAME = "superadmin"
CREATE_USER = "mutation($i:String!,$p:String!){ createUser(input:{identifier:$i, password:$p}) { id } }"
PROBE_CONNECTIONS = 4
LOOKUP_EXPECT = b'"sessionFromToken":{"id"'
LOGIN_EXPECT = '"__typename":"CachedSession"'
FAILED_LOGIN_EXPECT = '"__typename":"InvalidCredentialsError"'
#: The issue's bound: lookups' p99 in a login storm at most this many times their idle p99.
TARGET_RATIO = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3, help="runs per backend; the report gives medians [3]")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per phase [8]")
    parser.add_argument("--storm", type=int, default=64, help="concurrent logins of the storm [64]")
    parser.add_argument("--login-concurrency", type=int, default=8, help="connections of the throughput phase [8]")
    parser.add_argument(
        "--failing-storm",
        action="store_true",
        help="the storm's logins use a wrong password: Argon2 alone, without the writes of a session (a control)",
    )
    parser.add_argument("--probe-rate", type=float, default=200.0, help="cached lookups per second [200]")
    parser.add_argument("--tokens", type=int, default=200, help="cached anonymous sessions the probe cycles [200]")
    parser.add_argument("--pg-admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for an idle machine [30]")
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration <= 0 or args.storm < 1 or args.login_concurrency < 1 or args.probe_rate <= 0:
        parser.error("--runs, --duration, --storm, --login-concurrency and --probe-rate must be positive")
    args.cache_namespace = f"bench-storm-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    return args


async def probe(server: Server, tokens: list[str], rate: float, duration: float) -> dict[str, Any]:
    """Cached lookups at `rate` per second for `duration` s; latency from each request's planned send time.
    Also the CPU (percent of one core) of the server and of everything else but this process."""
    port = server.port
    requests = [build_request(HOST, port, "/graphql", graphql_body(LOOKUP_QUERY, {"t": t}).encode()) for t in tokens]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(PROBE_CONNECTIONS):
        idle.put_nowait(Connection(HOST, port))
    latencies: list[float] = []
    errors: list[str] = []

    async def one(raw: bytes, planned: float) -> None:
        connection = await idle.get()
        try:
            status, _, body = await asyncio.wait_for(connection.request(raw), 30)
            if status != 200 or LOOKUP_EXPECT not in body:
                errors.append(f"HTTP {status}: {body[:200]!r}")
            else:
                latencies.append(time.perf_counter() - planned)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            errors.append(repr(error))
        finally:
            idle.put_nowait(connection)

    count = int(rate * duration)
    machine_0, server_0, own_0 = system_cpu_ticks(), cpu_seconds_of(server.pid), time.process_time()
    started = time.perf_counter()
    tasks = []
    for index in range(count):
        planned = started + index / rate
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        tasks.append(asyncio.create_task(one(requests[index % len(requests)], planned)))
    await asyncio.gather(*tasks)
    machine_1, server_1, own_1 = system_cpu_ticks(), cpu_seconds_of(server.pid), time.process_time()
    window = time.perf_counter() - started
    while not idle.empty():
        idle.get_nowait().close()
    latencies.sort()
    server_cpu = busy = None  # percent of one core, as bench/load.py counts them
    if server_0 is not None and server_1 is not None:
        server_cpu = 100.0 * (server_1 - server_0) / window
    if machine_0 and machine_1 and machine_1[1] > machine_0[1]:
        cores = os.cpu_count() or 1
        busy = 100.0 * cores * (machine_1[0] - machine_0[0]) / (machine_1[1] - machine_0[1])
    return {
        "latencies": latencies,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(percentile(latencies, 1.0)),
        "server_cpu_percent": None if server_cpu is None else round(server_cpu, 1),
        "probe_cpu_percent": round(100.0 * (own_1 - own_0) / window, 1),
        "machine_cpu_percent": None if busy is None else round(busy, 1),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


async def create_users(port: int, admin_token: str, password: str, count: int) -> list[str]:
    """`count` users with `password`, made by the superadmin: a storm of one user's logins would measure
    that user's row lock, not the hashing."""
    connection = Connection(HOST, port)
    names = [f"storm-{index}@example.com" for index in range(count)]
    try:
        for name in names:
            body = graphql_body(CREATE_USER, {"i": name, "p": password}).encode()
            raw = build_request(HOST, port, "/graphql", body, {"Authorization": f"Bearer {admin_token}"})
            status, _, answer = await connection.request(raw)
            if status != 200 or b'"createUser":{"id"' not in answer:
                raise BenchError(f"createUser failed: HTTP {status} {answer[:300]!r}")
    finally:
        connection.close()
    return names


def login_job(
    server: Server,
    users: list[str],
    password: str,
    concurrency: int,
    warmup: float,
    duration: float,
    failing: bool = False,
) -> dict[str, Any]:
    """Logins of `users` in turn; `failing`: with a wrong password (the hash without the session's writes)."""
    return {
        "host": HOST,
        "port": server.port,
        "path": "/graphql",
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "bodies": [
            graphql_body(LOGIN_QUERY, {"u": user, "p": "wrong-" + password if failing else password}) for user in users
        ],
        "expect": FAILED_LOGIN_EXPECT if failing else LOGIN_EXPECT,
        "server_pid": server.pid,
        "grace": 30.0,
        "max_requests": 5_000_000,
    }


def others_cpu(phase: dict[str, Any], generator_cpu: float) -> float | None:
    """What the rest of the machine (other people's work; PostgreSQL, Redis) used during a probe phase."""
    if phase["machine_cpu_percent"] is None or phase["server_cpu_percent"] is None:
        return None
    ours: float = phase["server_cpu_percent"] + phase["probe_cpu_percent"] + generator_cpu
    machine: float = phase["machine_cpu_percent"]
    return round(max(0.0, machine - ours), 1)


def login_figures(run: dict[str, Any]) -> dict[str, Any]:
    rps = run["requests_per_second"]
    cpu = run.get("server_cpu_percent")
    return {
        "requests_per_second": rps,
        "p50_ms": run["latency_ms"]["p50"],
        "p99_ms": run["latency_ms"]["p99"],
        "server_cpu_ms_per_login": round(cpu * 10 / rps, 1) if cpu is not None and rps else None,
        "errors": run["errors"],
        "error_samples": run["error_samples"],
        "other_cpu_percent": run.get("other_cpu_percent"),
    }


def one_run(
    server: Server, args: argparse.Namespace, password: str, tokens: list[str], users: list[str]
) -> dict[str, Any]:
    quiet = wait_idle(server.pid, args.quiet_wait)
    idle = asyncio.run(probe(server, tokens, args.probe_rate, args.duration))

    wait_idle(server.pid, args.quiet_wait)
    warmup = 3.0  # the storm's queue fills before the probe starts
    job = login_job(server, users, password, args.storm, warmup, args.duration + 1.0, args.failing_storm)
    storm = Generator(job, at_once=True)
    time.sleep(warmup + 0.5)
    stormy = asyncio.run(probe(server, tokens, args.probe_rate, args.duration))
    storm_run = storm.finish()
    storm_logins = login_figures(storm_run)
    for phase, generator_cpu in ((idle, 0.0), (stormy, storm_run["generator_cpu_percent"])):
        phase["others_cpu_percent"] = others_cpu(phase, generator_cpu)

    wait_idle(server.pid, args.quiet_wait)
    throughput = login_figures(
        run_generator(login_job(server, users, password, args.login_concurrency, 2.0, args.duration))
    )
    ratio = stormy["p99_ms"] / idle["p99_ms"] if stormy["p99_ms"] and idle["p99_ms"] else None
    return {
        "machine_quiet_before": quiet["machine_quiet"],
        "lookups_idle": idle,
        "lookups_storm": stormy,
        "p99_ratio": None if ratio is None else round(ratio, 2),
        "logins_storm": storm_logins,
        "logins_throughput": throughput,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(*path: str) -> float | None:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
        return round(statistics.median(values), 2) if values else None

    pooled = {
        phase: sorted(latency for run in runs for latency in run[phase].pop("latencies"))
        for phase in ("lookups_idle", "lookups_storm")
    }
    idle_p99, storm_p99 = (percentile(pooled[phase], 0.99) for phase in ("lookups_idle", "lookups_storm"))
    return {
        "pooled_idle_p50_ms": _ms(percentile(pooled["lookups_idle"], 0.50)),
        "pooled_idle_p99_ms": _ms(idle_p99),
        "pooled_storm_p50_ms": _ms(percentile(pooled["lookups_storm"], 0.50)),
        "pooled_storm_p99_ms": _ms(storm_p99),
        "pooled_p99_ratio": round(storm_p99 / idle_p99, 2) if idle_p99 and storm_p99 else None,
        "others_cpu_idle_percent": median("lookups_idle", "others_cpu_percent"),
        "others_cpu_storm_percent": median("lookups_storm", "others_cpu_percent"),
        "idle_p50_ms": median("lookups_idle", "p50_ms"),
        "idle_p99_ms": median("lookups_idle", "p99_ms"),
        "storm_p50_ms": median("lookups_storm", "p50_ms"),
        "storm_p99_ms": median("lookups_storm", "p99_ms"),
        "p99_ratio": median("p99_ratio"),
        "p99_ratios": [run["p99_ratio"] for run in runs],
        "storm_logins_per_second": median("logins_storm", "requests_per_second"),
        "storm_login_p50_ms": median("logins_storm", "p50_ms"),
        "storm_login_p99_ms": median("logins_storm", "p99_ms"),
        "logins_per_second": median("logins_throughput", "requests_per_second"),
        "login_p50_ms": median("logins_throughput", "p50_ms"),
        "login_p99_ms": median("logins_throughput", "p99_ms"),
        "cpu_ms_per_login": median("logins_throughput", "server_cpu_ms_per_login"),
        "other_cpu_percent": median("logins_throughput", "other_cpu_percent"),
        "runs_on_a_busy_machine": sum(not run["machine_quiet_before"] for run in runs),
    }


def run_backend(backend: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    password = "bench-" + secrets.token_urlsafe(18)
    database = sqlite_database("storm") if backend == "sqlite" else postgres_database(args.pg_admin_url, "storm")
    cache = "memory" if backend == "sqlite" else args.redis_url
    with database as (database_url, _):
        server = Server(f"storm-{backend}", server_env(args, database_url, cache, password, free_port()), log_dir)
        try:
            server.start()
            prepared = asyncio.run(prepare(server.port, USERNAME, password, args.tokens))
            tokens = prepared["tokens"]
            users = asyncio.run(create_users(server.port, prepared["superadmin_token"], password, args.storm))
            runs = []
            for index in range(args.runs):
                run = one_run(server, args, password, tokens, users)
                runs.append(run)
                log(
                    f"{backend} run {index + 1}/{args.runs}: lookups p99 idle {run['lookups_idle']['p99_ms']} ms,"
                    f" storm {run['lookups_storm']['p99_ms']} ms (x{run['p99_ratio']});"
                    f" storm {run['logins_storm']['requests_per_second']} logins/s;"
                    f" {args.login_concurrency} connections {run['logins_throughput']['requests_per_second']} logins/s"
                )
        finally:
            server.stop()
    return {"runs": runs, "median": medians(runs)}


def print_report(results: dict[str, dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    print(
        f"\nLogin storm: cached lookups at {args.probe_rate:g}/s, idle and while {args.storm} connections log in;"
        f" logins alone at {args.login_concurrency} connections. Medians of {args.runs} runs of {args.duration:g} s."
    )
    header = (
        f"{'backend':9} {'idle p50':>9} {'idle p99':>9} {'storm p50':>10} {'storm p99':>10} {'p99 x':>6}"
        f" {'storm login/s':>14} {'login/s':>8} {'login p50':>10} {'login p99':>10} {'CPU ms/login':>13}"
    )
    print(header)
    for backend, result in results.items():
        m = result["median"]
        print(
            f"{backend:9} {m['idle_p50_ms']:>9} {m['idle_p99_ms']:>9} {m['storm_p50_ms']:>10} {m['storm_p99_ms']:>10}"
            f" {m['p99_ratio']:>6} {m['storm_logins_per_second']:>14} {m['logins_per_second']:>8}"
            f" {m['login_p50_ms']:>10} {m['login_p99_ms']:>10} {m['cpu_ms_per_login']:>13}"
        )
    for backend, result in results.items():
        m = result["median"]
        met = m["p99_ratio"] is not None and m["p99_ratio"] <= TARGET_RATIO
        print(
            f"{backend}: storm p99 / idle p99 = {m['p99_ratio']} (median of the runs {m['p99_ratios']};"
            f" all runs pooled: {m['pooled_idle_p99_ms']} -> {m['pooled_storm_p99_ms']} ms,"
            f" x{m['pooled_p99_ratio']}); target <= {TARGET_RATIO:g}: {'met' if met else 'MISSED'}"
        )
        print(
            f"{backend}: other processes used {m['others_cpu_idle_percent']}% of a core idle,"
            f" {m['others_cpu_storm_percent']}% in the storm, {m['other_cpu_percent']}% during the login runs"
            f" (medians); runs that began on a busy machine: {m['runs_on_a_busy_machine']}"
        )
    print(f"JSON: {path}")


def errors_of(results: dict[str, dict[str, Any]]) -> int:
    return sum(
        run[phase]["errors"]
        for result in results.values()
        for run in result["runs"]
        for phase in ("lookups_idle", "lookups_storm", "logins_storm", "logins_throughput")
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-login-storm.json"
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="session-bench-storm-") as log_dir:
        for backend in backends:
            log(f"login storm on {backend}")
            results[backend] = run_backend(backend, args, Path(log_dir))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    path.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    print_report(results, args, path)
    return 0 if errors_of(results) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
