"""The servers under test: `<venv python> -m server` in a subprocess, its environment and its databases."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _common import HOST, REPO_ROOT, BenchError, log
from load import ensure_loopback

sys.path.insert(0, str(REPO_ROOT))

from tests.live_server import free_port, stop_process

__all__ = [
    "Server",
    "forget_redis_generation",
    "free_port",
    "no_database",
    "postgres_database",
    "redis_info",
    "server_env",
    "server_python",
    "sqlite_database",
]

#: Inherited from the caller's environment; every service setting comes from the benchmark alone
#: (plus --server-env), so a setting exported in the caller's shell cannot change the figures.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def server_python() -> str:
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


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


# --------------------------------------------------------------------------------------------
# databases


@contextmanager
def no_database() -> Iterator[tuple[str, dict[str, Any]]]:
    """For the controls (bench/controls.py), which use none."""
    yield "", {"kind": "none"}


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


# --------------------------------------------------------------------------------------------
# the server process


class Server:
    """`<venv python> -m server` (or other `arguments`) in a subprocess; always stopped by `stop()`
    (SIGTERM, then SIGKILL)."""

    def __init__(
        self, label: str, env: dict[str, str], log_dir: Path, arguments: tuple[str, ...] = ("-m", "server")
    ) -> None:
        self.label = label
        self.port = int(env["PORT"])
        self.env = env
        self.arguments = arguments
        self.log_path = log_dir / f"server-{label}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        log_file = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [server_python(), *self.arguments],
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
        if stop_process(process, timeout=15):
            log(f"server {self.label} ignored SIGTERM, killed it")
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
