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
  cached    sessionFromToken over a pool of tokens already in the session cache
  uncached  the same against a second server started with SESSION_CACHE=noop (database every time)
  create    mutation { createAnonymousSession { id token } }
  login     mutation { login(username, password) { __typename } } as the superadmin (Argon2)

The exit status is 0 only when every scenario ran with zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from load import Connection, build_request, cpu_seconds_of, ensure_loopback, system_cpu_ticks  # noqa: E402

HOST = "127.0.0.1"
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "tortoise-orm",
    "aiocache",
    "aiosqlite",
    "asyncpg",
    "redis",
    "argon2-cffi",
    "h11",
    "httptools",
    "uvloop",
)

LOOKUP_QUERY = "query($t:String!){ sessionFromToken(token:$t){ id expires user { id } } }"
CREATE_QUERY = "mutation { createAnonymousSession { id token } }"
LOGIN_QUERY = "mutation($u:String!,$p:String!){ login(username:$u, password:$p) { __typename } }"

#: scenario -> (server configuration, description)
SCENARIOS: dict[str, tuple[str, str]] = {
    "cached": ("main", "sessionFromToken, token already cached"),
    "uncached": ("nocache", "sessionFromToken, SESSION_CACHE=noop (database)"),
    "create": ("main", "createAnonymousSession"),
    "login": ("main", "login (superadmin, Argon2)"),
}


# --------------------------------------------------------------------------------------------
# small helpers


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_python() -> str:
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------------------------
# machine description


def machine_info(python: str) -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total_mib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_mib = int(line.split()[1]) // 1024
    except OSError:
        pass
    probe = (
        "import json, sys, importlib.metadata as m, importlib.util as u\n"
        f"names = {list(PACKAGES)!r}\n"
        "versions = {}\n"
        "for n in names:\n"
        "    try: versions[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: versions[n] = None\n"
        "print(json.dumps({'python': sys.version.split()[0], 'implementation': sys.implementation.name,\n"
        "  'packages': versions}))\n"
    )
    try:
        probed = json.loads(
            subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True).stdout
        )
    except (subprocess.SubprocessError, ValueError) as error:
        probed = {"error": repr(error)}
    packages = probed.get("packages", {})
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mib": mem_total_mib,
        "kernel": platform.release(),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "server_python": python,
        "python_version": probed.get("python"),
        "generator_python": sys.version.split()[0],
        "packages": packages,
        # uvicorn picks uvloop / httptools when installed, else asyncio / h11.
        "uvicorn_loop": "uvloop" if packages.get("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if packages.get("httptools") else "h11",
    }


# --------------------------------------------------------------------------------------------
# databases


@contextmanager
def sqlite_database(label: str) -> Iterator[tuple[str, dict[str, Any]]]:
    folder = tempfile.mkdtemp(prefix=f"session-bench-{label}-")
    try:
        yield f"sqlite://{folder}/sessions.sqlite3", {"kind": "sqlite", "path": f"{folder}/sessions.sqlite3"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pg_connect_kwargs(admin_url: str) -> dict[str, Any]:
    parts = urlsplit(admin_url)
    if parts.hostname is None:
        raise BenchError("--pg-admin-url needs a host")
    ensure_loopback(parts.hostname)
    return {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password,
        "database": parts.path.strip("/") or "postgres",
    }


async def _pg_execute(admin_url: str, *statements: str) -> list[Any]:
    import asyncpg  # a dependency of the project (tortoise-orm[asyncpg])

    connection = await asyncpg.connect(**_pg_connect_kwargs(admin_url), timeout=10)
    try:
        return [await connection.fetchval(statement) for statement in statements]
    finally:
        await connection.close()


@contextmanager
def postgres_database(admin_url: str, label: str) -> Iterator[tuple[str, dict[str, Any]]]:
    name = f"session_bench_{time.strftime('%Y%m%d_%H%M%S')}_{label}_{secrets.token_hex(4)}"
    try:
        version = asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"', "SHOW server_version"))[1]
    except Exception as error:
        raise BenchError(f"could not create PostgreSQL database {name}: {error!r}") from None
    log(f"created PostgreSQL database {name}")
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    try:
        yield url, {"kind": "postgres", "database": name, "server_version": version}
    finally:
        try:
            asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            log(f"dropped PostgreSQL database {name}")
        except Exception as error:
            log(f"could not drop PostgreSQL database {name}: {error!r}")


def redis_info(url: str) -> dict[str, Any]:
    """Version and key count of the Redis database the server is told to use (sanity checks)."""
    try:
        import redis
    except ImportError:
        return {"error": "redis-py not importable"}
    parts = urlsplit(url)
    ensure_loopback(parts.hostname or "")
    try:
        client = redis.Redis(
            host=parts.hostname or HOST, port=parts.port or 6379, db=int(parts.path.strip("/") or 0), socket_timeout=5
        )
        try:
            return {"version": client.info("server").get("redis_version"), "keys": client.dbsize()}
        finally:
            client.close()
    except Exception as error:
        return {"error": repr(error)}


# --------------------------------------------------------------------------------------------
# the server process


class Server:
    """`<venv python> -m server` in a subprocess; always stopped by `stop()` (SIGTERM, then SIGKILL)."""

    def __init__(self, label: str, env: dict[str, str], log_dir: Path) -> None:
        self.label = label
        self.port = int(env["PORT"])
        self.env = env
        self.log_path = log_dir / f"server-{label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        log_file = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [server_python(), "-m", "server"],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        finally:
            log_file.close()
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server {self.label} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, body = asyncio.run(_get(self.port, "/health"))
                if status == 200:
                    log(f"server {self.label} healthy on port {self.port} (pid {self.process.pid})")
                    return
                last_error = f"/health answered {status}: {body[:200]!r}"
            except OSError as error:
                last_error = repr(error)
            time.sleep(0.2)
        raise BenchError(f"server {self.label} not healthy after {timeout}s ({last_error}):\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"server {self.label} ignored SIGTERM, killing it")
            process.kill()
            process.wait(timeout=10)
        log(f"server {self.label} stopped (exit {process.returncode})")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body


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
        data = await _graphql(connection, port, LOGIN_QUERY, {"u": username, "p": password})
        if data["login"]["__typename"] != "CachedSession":
            raise BenchError(f"superadmin login failed: {data}")
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
    return {"tokens": created}


# --------------------------------------------------------------------------------------------
# load runs


class Generator:
    """One run of bench/load.py in its own process; killed if it overruns its time bound."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.bound = float(job["warmup"]) + float(job["duration"]) + float(job["grace"]) + 30.0
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "load.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        self.payload = json.dumps(job).encode()

    def finish(self) -> dict[str, Any]:
        process = self.process
        try:
            out, err = process.communicate(self.payload or None, timeout=self.bound)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
            raise BenchError(f"load generator did not finish within {self.bound:.0f}s") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        if process.returncode != 0:
            raise BenchError(f"load generator failed ({process.returncode}): {err.decode(errors='replace')[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        return result


def run_generator(job: dict[str, Any]) -> dict[str, Any]:
    return Generator(job).finish()


def wait_idle(pid: int, quiet_wait: float, threshold: float = 0.10, machine_threshold: float = 0.35) -> dict[str, Any]:
    """Before a run: wait (at most 20 s) until the server uses < `threshold` of a core, so work left
    over by an earlier run (e.g. Argon2 threads of abandoned logins) does not leak into the next one;
    then wait (at most `quiet_wait` s) until the whole machine uses < `machine_threshold` of a core,
    so that a burst of someone else's work (a test suite on a shared machine) is not measured."""
    started = time.monotonic()
    while time.monotonic() - started < 20.0:
        before = cpu_seconds_of(pid)
        time.sleep(0.3)
        after = cpu_seconds_of(pid)
        if before is None or after is None or (after - before) / 0.3 < threshold:
            break
    server_idle_after = time.monotonic() - started
    quiet = True
    machine_started = time.monotonic()
    while True:
        before_ticks = system_cpu_ticks()
        time.sleep(0.5)
        after_ticks = system_cpu_ticks()
        if before_ticks is None or after_ticks is None or after_ticks[1] <= before_ticks[1]:
            break
        busy = (os.cpu_count() or 1) * (after_ticks[0] - before_ticks[0]) / (after_ticks[1] - before_ticks[1])
        if busy < machine_threshold:
            break
        if time.monotonic() - machine_started >= quiet_wait:
            quiet = False
            log(f"the machine stayed busy ({100 * busy:.0f}% of a core) for {quiet_wait:.0f}s: measuring anyway")
            break
    return {
        "server_idle_after_s": round(server_idle_after, 2),
        "machine_quiet": quiet,
        "waited_s": round(time.monotonic() - started, 2),
    }


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Drive a trivial canned-response server (load.py --canned-server) with the same generator and
    concurrency: the ceiling of the generator itself on this machine, to compare with the real runs."""
    port = free_port()
    duration = 2.0
    server = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "load.py"), "--canned-server", str(port), str(duration + 20)],
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        job = {
            "host": HOST,
            "port": port,
            "concurrency": args.concurrency,
            "warmup": 0.5,
            "duration": duration,
            "bodies": [graphql_body(LOOKUP_QUERY, {"t": "calibration"})],
            "expect": '"sessionFromToken":{"id"',
            "server_pid": server.pid,
            "grace": 5.0,
            "max_requests": args.max_requests,
        }
        return run_generator(job)
    finally:
        server.kill()
        server.wait(timeout=10)


def scenario_job(
    name: str, server: Server, prepared: dict[str, Any], args: argparse.Namespace, username: str, password: str
) -> dict[str, Any]:
    if name in ("cached", "uncached"):
        bodies = [graphql_body(LOOKUP_QUERY, {"t": token}) for token in prepared["tokens"]]
        expect = '"sessionFromToken":{"id"'
    elif name == "create":
        bodies, expect = [graphql_body(CREATE_QUERY)], '"createAnonymousSession":{"id"'
    elif name == "login":
        bodies, expect = [graphql_body(LOGIN_QUERY, {"u": username, "p": password})], '"__typename":"CachedSession"'
    else:
        raise BenchError(f"unknown scenario {name}")
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
        "path": "/graphql",
        "concurrency": concurrency,
        "warmup": warmup,
        "duration": duration,
        "bodies": bodies,
        "expect": expect,
        "server_pid": server.pid,
        "grace": args.grace,
        "max_requests": args.max_requests,
    }


def profile_run(name: str, job: dict[str, Any], server: Server, py_spy: str, out_base: Path) -> dict[str, Any]:
    """One extra, unmeasured run with py-spy sampling the server after the warm-up; writes the
    collapsed stacks and a summary of the hottest frames."""
    raw_path = out_base.with_name(out_base.name + f"-{name}.pyspy.txt")
    generator = Generator(job)
    assert generator.process.stdin is not None
    generator.process.stdin.write(generator.payload)  # the job starts now; finish() sends nothing more
    generator.process.stdin.close()
    generator.process.stdin = None
    generator.payload = b""
    spy: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(float(job["warmup"]))
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(max(1, int(job["duration"]))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw_path),
                # blocking sampling (pauses the server ~0.1 ms per sample): complete stacks; this run is
                # not counted, so its own slowdown does not matter
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        result = generator.finish()
        spy.wait(timeout=30)
    finally:
        if generator.process.poll() is None:
            generator.process.kill()
            generator.process.wait(timeout=10)
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(timeout=10)
    summary = summarize_collapsed(raw_path) if raw_path.exists() else {"error": "py-spy wrote nothing"}
    summary_path = raw_path.with_suffix(".summary.txt")
    summary_path.write_text(format_profile_summary(name, summary))
    return {"raw": str(raw_path), "summary": str(summary_path), "run": result, **summary}


#: Leaf frames of threads that are blocked, not running (py-spy cannot tell a C-level wait from work).
IDLE_LEAVES = (
    "_connection_worker_thread (aiosqlite/core.py:59)",  # aiosqlite's worker waiting on its queue
    "Condition.wait (threading.py",  # idle anyio worker threads
    "Event.wait (threading.py",
    "Thread.join (threading.py",
)

#: Inclusive shares reported for these groups of frames (regular expressions over a whole stack).
PROFILE_GROUPS = {
    "uvicorn protocol + socket writes": r"RequestResponseCycle\.send|HttpToolsProtocol",
    "HTTP layer (body parsing, context, response)": r"parse_http_body|get_context|create_response",
    "Strawberry parse/validate phase": r"_prepare_operation_async",
    "Strawberry extension hooks (all phases)": r"strawberry/extensions/context\.py",
    "GraphQL execution (incl. resolvers)": r"_execute_operation",
    "SessionService (resolvers' service calls)": r"SessionService\.|AuthService\.",
    "session cache via aiocache / redis-py": r"aiocache/|redis/",
    "Tortoise query building (pypika)": r"_make_query",
    "database driver (aiosqlite / asyncpg)": r"aiosqlite/core\.py:(?!59\))|asyncpg",
    "Argon2 (password verification)": r"argon2/",
}


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per frame from py-spy's collapsed ("raw") output, over the
    samples of running threads (idle waits are dropped), plus the shares of PROFILE_GROUPS."""
    import re

    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    groups = {name: re.compile(pattern) for name, pattern in PROFILE_GROUPS.items()}
    group_counts = dict.fromkeys(groups, 0)
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count
        for name, pattern in groups.items():
            if pattern.search(stack):
                group_counts[name] += count

    def share(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        return [(frame, share(n)) for frame, n in sorted(counts.items(), key=lambda item: -item[1])[:top]]

    return {
        "samples": total,
        "idle_samples_dropped": idle,
        "groups": {name: share(n) for name, n in group_counts.items()},
        "top_self": ranked(self_counts),
        "top_inclusive": ranked(incl_counts),
    }


def format_profile_summary(name: str, summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy profile of the server during scenario {name}: {summary.get('samples', 0)} samples of running"
        f" threads ({summary.get('idle_samples_dropped', 0)} idle-thread samples dropped)",
        "",
        "incl %  group (overlapping)",
    ]
    lines += [f"{value:6.1f}  {group}" for group, value in summary.get("groups", {}).items()]
    lines += ["", "self %  frame"]
    lines += [f"{share:6.1f}  {frame}" for frame, share in summary.get("top_self", [])]
    lines += ["", "incl %  frame"]
    lines += [f"{share:6.1f}  {frame}" for frame, share in summary.get("top_inclusive", [])]
    return "\n".join(lines) + "\n"


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    rps = [r["requests_per_second"] for r in runs]
    return {
        "runs": len(runs),
        "requests_per_second_median": median(rps),
        "requests_per_second_min": min(rps) if rps else None,
        "requests_per_second_max": max(rps) if rps else None,
        "p50_ms_median": median([r["latency_ms"]["p50"] for r in runs]),
        "p99_ms_median": median([r["latency_ms"]["p99"] for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "generator_cpu_percent_median": median([r["generator_cpu_percent"] for r in runs]),
        "server_cpu_percent_median": median([r["server_cpu_percent"] for r in runs]),
        "other_cpu_percent_median": median([r.get("other_cpu_percent") for r in runs]),
        # server CPU time per answered request: less sensitive than req/s to a busy machine
        "server_cpu_ms_per_request_median": median(
            [
                10.0 * r["server_cpu_percent"] / r["requests_per_second"]
                if r["server_cpu_percent"] is not None and r["requests_per_second"]
                else None
                for r in runs
            ]
        ),
        "load_average_1m_median": median([r.get("load_average_1m") for r in runs]),
        "runs_started_on_busy_machine": sum(1 for r in runs if not r.get("before_run", {}).get("machine_quiet", True)),
    }


# --------------------------------------------------------------------------------------------
# main


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


#: Inherited from the caller's environment; every service setting comes from the benchmark alone
#: (plus --server-env), so a setting exported in the caller's shell cannot change the figures.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def server_env(args: argparse.Namespace, database_url: str, cache: str, password: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV}
    env.update(
        {
            "HOST": HOST,
            "PORT": str(port),
            "DATABASE_URL": database_url,
            "SESSION_CACHE": cache,
            "SESSION_CACHE_NAMESPACE": args.cache_namespace,
            "SUPERADMIN_IDENTIFIER": "superadmin",
            "SUPERADMIN_PASSWORD": password,
            "LOG_LEVEL": args.server_log_level,
            # The login limiter (10 attempts per 3 minutes per address by default) would refuse the
            # login scenario's flood from 127.0.0.1 after ten logins: measure the login itself.
            "LOGIN_RATE_LIMIT": "off",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for item in args.server_env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def forget_redis_generation(url: str, namespace: str) -> None:
    """Delete the one key of the benchmark's namespace that has no TTL (`<namespace>:gen`)."""
    try:
        import redis

        parts = urlsplit(url)
        client = redis.Redis(
            host=parts.hostname or HOST, port=parts.port or 6379, db=int(parts.path.strip("/") or 0), socket_timeout=5
        )
        try:
            client.delete(f"{namespace}:gen")
        finally:
            client.close()
    except Exception as error:
        log(f"could not delete {namespace}:gen: {error!r}")


def print_table(backend: str, summaries: dict[str, dict[str, Any]], failures: dict[str, str]) -> None:
    header = (
        f"{'scenario':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'runs':>5}"
        f" {'rps min..max':>15} {'gen CPU':>8} {'srv CPU':>8} {'other CPU':>9} {'srv ms/req':>10}"
    )
    print(f"\nsession service benchmark, backend {backend} (medians over runs)")
    print(header)
    print("-" * len(header))

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for name, s in summaries.items():
        spread = f"{fmt(s['requests_per_second_min'], '.0f')}..{fmt(s['requests_per_second_max'], '.0f')}"
        print(
            f"{name:<10} {fmt(s['requests_per_second_median'], '.1f'):>9} {fmt(s['p50_ms_median'], '.2f'):>8}"
            f" {fmt(s['p99_ms_median'], '.2f'):>8} {s['errors']:>7} {s['runs']:>5} {spread:>15}"
            f" {fmt(s['generator_cpu_percent_median'], '.0f') + '%':>8}"
            f" {fmt(s['server_cpu_percent_median'], '.0f') + '%':>8}"
            f" {fmt(s['other_cpu_percent_median'], '.0f') + '%':>9}"
            f" {fmt(s['server_cpu_ms_per_request_median'], '.3f'):>10}"
        )
    for name, reason in failures.items():
        print(f"{name:<10} FAILED: {reason.splitlines()[0] if reason else ''}")
    print(
        "CPU in % of one core over the measured window: gen = load generator, srv = server process (all"
        " threads),\nother = the rest of the machine (PostgreSQL/Redis backends, other users' processes);"
        " srv ms/req = server CPU time per answered request."
    )


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
            if args.backend == "sqlite":
                cache = "memory" if label == "main" else "noop"
                database = sqlite_database(label)
            else:
                cache = args.redis_url if label == "main" else "noop"
                if cache.startswith("redis://"):
                    ensure_loopback(urlsplit(cache).hostname or "")
                database = postgres_database(args.pg_admin_url, label)
            try:
                with database as (database_url, database_info):
                    port = free_port()
                    server = Server(label, server_env(args, database_url, cache, password, port), log_dir)
                    info: dict[str, Any] = {"session_cache": cache, "database": database_info, "port": port}
                    result["servers"][label] = info
                    if cache.startswith("redis://"):
                        info["redis_before"] = redis_info(cache)
                    try:
                        log(f"starting server {label}: SESSION_CACHE={cache}, {database_info['kind']}")
                        server.start()
                        started = time.monotonic()
                        prepared = asyncio.run(prepare(port, username, password, args.tokens))
                        info["prepare_seconds"] = round(time.monotonic() - started, 2)
                        info["tokens"] = len(prepared["tokens"])
                        if cache.startswith("redis://"):
                            info["redis_after_prepare"] = redis_info(cache)
                        log(f"prepared {len(prepared['tokens'])} tokens in {info['prepare_seconds']}s")
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
        path = out_base.with_suffix(".json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print_table(args.backend, summaries, result["failures"])
        machine = result["machine"]
        print(
            f"machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python_version']}, "
            f"uvicorn {machine['packages'].get('uvicorn')} ({machine['uvicorn_loop']} + {machine['uvicorn_http']})"
        )
        for name, s in summaries.items():
            if (s["generator_cpu_percent_median"] or 0) > 85:
                print(
                    f"warning: the load generator used {s['generator_cpu_percent_median']}% CPU in {name}: "
                    "it may be the bottleneck"
                )
        calibration_result = result.get("generator_calibration")
        if calibration_result:
            calibration = calibration_result
            print(
                f"generator ceiling against a trivial canned server: {calibration['requests_per_second']:.0f} req/s"
                f" ({calibration['generator_cpu_percent']:.0f}% CPU of one core)"
            )
        print(f"results: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    errors = sum(s["errors"] for s in summaries.values())
    return 0 if errors == 0 and not result["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
