"""Benchmark of the session service: the real server, load from a second process, on loopback.

    .venv/bin/python bench/run.py [--backend sqlite|postgres] [--runs 5] [--duration 5]
                                  [--concurrency 32] [--scenarios cached,uncached,create,login]

For each server configuration it needs, it starts `<venv python> -m server` (cwd = the repository
root) on a free 127.0.0.1 port with a fresh database (a temporary SQLite file, or a freshly
created, uniquely named PostgreSQL database that is dropped afterwards), waits for /health,
prepares data (a superadmin login with a non-default SUPERADMIN_PASSWORD, a pool of anonymous
session tokens), then drives each scenario from a separate load-generator process (bench/load.py)
for `--runs` runs of `--duration` seconds after a warm-up. It prints a table and writes
bench/results/<timestamp>-<backend>.json. See bench/README.md.

Scenarios:
  cached      sessionFromToken over a pool of tokens already in the session cache
  active      activeSession { id expires user { identifier } }, the pool's tokens as bearer tokens
  whole       sessionFromToken: the whole CachedSession (user, channelPermissions), superadmin's token
  unknown     sessionFromToken over a pool of tokens that match no session
  typename    { __typename } through the service
  uncached    the same as cached against a second server started with SESSION_CACHE=noop (database every time)
  create      mutation { createAnonymousSession { id token } }
  login       mutation { login(username, password) { __typename } } as the superadmin (Argon2)
  starlette   control: a bare Starlette route answering a constant JSON body (bench/controls.py)
  strawberry  control: { __typename } through Strawberry's stock view with the service's extensions

Each scenario's req/s and server CPU per request are also printed as ratios to the two controls.

The exit status is 0 only when every scenario ran with zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import BENCH_DIR, BenchError, log
from load import cpu_seconds_of, ensure_loopback
from load_runs import calibrate, run_generator, wait_idle
from profiling import profile_run
from report import control_ratios, machine_info, print_report, summarize_runs
from scenarios import CONTROL_SCENARIOS, CONTROLS, SCENARIOS, prepare, scenario_job
from servers import (
    Server,
    forget_redis_generation,
    free_port,
    no_database,
    postgres_database,
    redis_info,
    server_env,
    server_python,
    sqlite_database,
)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per scenario [5]")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run [5]")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each run [1]")
    parser.add_argument(
        "--login-duration", type=float, default=None, help="seconds per login run (Argon2 is slow) [same as --duration]"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="open keep-alive connections [32]")
    parser.add_argument(
        "--login-concurrency", type=int, default=4, help="connections for the login scenario (0: --concurrency) [4]"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {','.join(SCENARIOS)} [all]"
    )
    parser.add_argument("--tokens", type=int, default=1000, help="anonymous session tokens in the lookup pool [1000]")
    parser.add_argument(
        "--pg-admin-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL connection used to create and drop the benchmark databases",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/15",
        help="SESSION_CACHE for the postgres backend [redis://127.0.0.1:6379/15]",
    )
    parser.add_argument("--grace", type=float, default=10.0, help="seconds in-flight requests may take after a run")
    parser.add_argument("--max-requests", type=int, default=5_000_000, help="hard cap of requests per run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measured runs, one extra unmeasured run per scenario under py-spy",
    )
    parser.add_argument("--py-spy", default=None, help="path of the py-spy binary (default: found on PATH)")
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--server-log-level", default="warning", help="LOG_LEVEL of the server [warning]")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the servers, e.g. SESSION_CACHE_TTL=60 (repeatable)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each run, wait up to this many seconds for the machine to be idle (shared machines) [30]",
    )
    parser.add_argument(
        "--no-calibrate", action="store_true", help="skip measuring the generator against a trivial canned server"
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown or not names:
        parser.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    args.scenario_list = names
    bad_env = [item for item in args.server_env if "=" not in item or not item.partition("=")[0]]
    if bad_env:
        parser.error(f"--server-env takes NAME=VALUE, not {bad_env[0]!r}")
    # Redis keys of a run live under their own namespace (ignored by servers without the setting).
    args.cache_namespace = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    if args.runs < 1 or args.duration <= 0 or args.concurrency < 1 or args.tokens < 1:
        parser.error("--runs, --duration, --concurrency and --tokens must be positive")
    for option, url in (("--pg-admin-url", args.pg_admin_url), ("--redis-url", args.redis_url)):
        host = urlsplit(url).hostname or ""
        try:
            ensure_loopback(host)
        except SystemExit:
            parser.error(f"{option}: {host!r} is not a loopback address; the benchmark only talks to this machine")
    if args.profile:
        args.py_spy = args.py_spy or shutil.which("py-spy")
        if not args.py_spy:
            parser.error("--profile needs py-spy: install it in a throwaway venv and pass --py-spy PATH")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out_base = args.output_dir / f"{stamp}-{args.backend}"
    python = server_python()
    log(f"collecting machine info ({python})")
    result: dict[str, Any] = {
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "backend": args.backend,
        "command": " ".join([Path(sys.executable).name, "bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(python),
        "servers": {},
        "scenarios": {},
        "failures": {},
    }
    summaries: dict[str, dict[str, Any]] = {}
    username, password = "superadmin", "bench-" + secrets.token_urlsafe(18)

    # Servers in the order their first scenario appears.
    plan: dict[str, list[str]] = {}
    for name in args.scenario_list:
        plan.setdefault(SCENARIOS[name][0], []).append(name)

    log_dir = Path(tempfile.mkdtemp(prefix="session-bench-logs-"))
    try:
        if not args.no_calibrate:
            calibration = calibrate(args)
            result["generator_calibration"] = calibration
            log(
                f"generator ceiling (canned server, {args.concurrency} connections): "
                f"{calibration['requests_per_second']} req/s at {calibration['generator_cpu_percent']}% CPU"
            )
        for label, names in plan.items():
            if label == CONTROLS:
                cache, database = "noop", no_database()
            elif args.backend == "sqlite":
                cache = {"main": "memory", "memory": "memory", "redis-alone": args.redis_url}.get(label, "noop")
                database = sqlite_database(label)
            else:
                cache = {"main": args.redis_url, "memory": "memory", "redis-alone": args.redis_url}.get(label, "noop")
                if cache.startswith("redis://"):
                    ensure_loopback(urlsplit(cache).hostname or "")
                database = postgres_database(args.pg_admin_url, label)
            try:
                with database as (database_url, database_info):
                    port = free_port()
                    arguments = ("bench/controls.py",) if label == CONTROLS else ("-m", "server")
                    env = server_env(args, database_url, cache, password, port)
                    if label == "redis-alone":
                        env["SESSION_CACHE_FIRST_TIER"] = "false"
                    server = Server(label, env, log_dir, arguments)
                    info: dict[str, Any] = {"session_cache": cache, "database": database_info, "port": port}
                    result["servers"][label] = info
                    if cache.startswith("redis://"):
                        info["redis_before"] = redis_info(cache)
                    try:
                        log(f"starting server {label}: SESSION_CACHE={cache}, {database_info['kind']}")
                        server.start()
                        started = time.monotonic()
                        prepared: dict[str, Any] = {}
                        if label != CONTROLS:
                            prepared = asyncio.run(prepare(port, username, password, args.tokens))
                            info["prepare_seconds"] = round(time.monotonic() - started, 2)
                            info["tokens"] = len(prepared["tokens"])
                            log(f"prepared {len(prepared['tokens'])} tokens in {info['prepare_seconds']}s")
                        if cache.startswith("redis://"):
                            info["redis_after_prepare"] = redis_info(cache)
                        for name in names:
                            job = scenario_job(name, server, prepared, args, username, password)
                            runs = []
                            for index in range(args.runs):
                                if not server.alive():
                                    raise BenchError(f"server {label} died:\n{server.log_tail()}")
                                before_run = wait_idle(server.pid, args.quiet_wait)
                                run = run_generator(job)
                                run["before_run"] = before_run
                                runs.append(run)
                                log(
                                    f"{name} run {index + 1}/{args.runs}: {run['requests_per_second']} req/s, "
                                    f"p50 {run['latency_ms']['p50']} ms, p99 {run['latency_ms']['p99']} ms, "
                                    f"errors {run['errors']}, gen CPU {run['generator_cpu_percent']}%, "
                                    f"server CPU {run['server_cpu_percent']}%, others {run['other_cpu_percent']}%"
                                )
                                if run["errors"]:
                                    log(f"  error samples: {run['error_samples']}")
                            summaries[name] = summarize_runs(runs)
                            entry: dict[str, Any] = {
                                "server": label,
                                "description": SCENARIOS[name][1],
                                "duration": job["duration"],
                                "summary": summaries[name],
                                "runs": runs,
                            }
                            if args.profile:
                                log(f"{name}: profiling run under py-spy (not counted)")
                                wait_idle(server.pid, args.quiet_wait)
                                entry["profile"] = profile_run(name, job, server, args.py_spy, out_base)
                            result["scenarios"][name] = entry
                        info["server_cpu_seconds_total"] = cpu_seconds_of(server.pid)
                    except BenchError as error:
                        log(f"server {label} failed: {error}")
                        for name in names:
                            if name not in result["scenarios"]:
                                result["failures"][name] = str(error)
                    finally:
                        server.stop()
                        if cache.startswith("redis://"):
                            forget_redis_generation(cache, args.cache_namespace)
                        tail = server.log_tail(15)
                        if tail:
                            info["log_tail"] = tail
            except BenchError as error:
                log(f"could not prepare {label}: {error}")
                for name in names:
                    result["failures"][name] = str(error)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
        result["finished_at"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        # scenario order as requested
        result["scenarios"] = {n: result["scenarios"][n] for n in args.scenario_list if n in result["scenarios"]}
        summaries = {n: summaries[n] for n in args.scenario_list if n in summaries}
        result["control_ratios"] = control_ratios(summaries, CONTROL_SCENARIOS)
        path = out_base.with_suffix(".json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print_report(result, summaries, path)
    errors = sum(s["errors"] for s in summaries.values())
    return 0 if errors == 0 and not result["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
