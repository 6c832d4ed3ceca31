"""`python -m server` in a subprocess on a free loopback port, as an operator would start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: Every setting the server reads: kept out of the inherited environment so the machine's cannot leak in.
SERVER_SETTINGS = (
    "HOST", "PORT", "DATABASE_URL", "SESSION_CACHE", "SESSION_CACHE_SIZE", "SESSION_DURATION", "SESSION_CACHE_TTL",
    "SESSION_CACHE_TIMEOUT_MS", "TOKEN_METHOD", "AUTH_TOKEN_HEADER", "SESSION_COOKIE_NAME", "COOKIE_SECURE",
    "CHANNEL_TOKEN_HEADER", "SUPERADMIN_IDENTIFIER", "SUPERADMIN_PASSWORD", "REQUIRE_VERIFICATION", "LOG_LEVEL",
    "SESSION_CACHE_NAMESPACE", "SESSION_CLEAN_INTERVAL", "SESSION_CLEAN_BATCH_SIZE", "MAX_REQUEST_BYTES",
    "MAX_QUERY_TOKENS", "MAX_QUERY_ALIASES", "MAX_QUERY_DEPTH", "CORS_ALLOW_ORIGINS", "GRAPHIQL", "INTROSPECTION",
    "LOGIN_RATE_LIMIT", "SESSION_MAX_LIFETIME", "MAX_HEADER_BYTES", "FORWARDED_ALLOW_IPS",
    "WEB_CONCURRENCY", "METRICS", "METRICS_ADDRESS", "PROMETHEUS_MULTIPROC_DIR", "SESSION_SERVICE_PREPARED_BY_PARENT",
)  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; True when it had to be killed."""
    if process.poll() is not None:
        return False
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
        return True
    return False


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"/health did not answer 200 within {timeout} s:\n{log.read_text(errors='replace')}")


@contextmanager
def live_server(tmp_path: Path, log_name: str = "server.log", **settings: str) -> Iterator[int]:
    """Start the server with `settings` as its environment (a SQLite file in `tmp_path` unless
    DATABASE_URL is given); its output goes to `tmp_path / log_name`. Yields the port; always stops it."""
    with live_server_process(tmp_path, log_name, **settings) as (port, _):
        yield port


@contextmanager
def live_server_process(
    tmp_path: Path, log_name: str = "server.log", **settings: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`live_server`, yielding the server process as well as its port."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}",
        SUPERADMIN_PASSWORD="live-server-not-the-default",
        LOG_LEVEL="warning",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(settings)
    log = tmp_path / log_name
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", log)
        yield port, process
    finally:
        stop_process(process)
