"""`python -m server` in a subprocess on a free loopback port, with settings from its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.test_cli import REPO_ROOT, SETTINGS_VARIABLES
from tests.test_server_e2e import free_port, wait_until_healthy

#: Settings not (yet) in SETTINGS_VARIABLES: also kept out of the inherited environment.
MORE_SETTINGS = (
    "MAX_REQUEST_BYTES", "MAX_QUERY_TOKENS", "MAX_QUERY_ALIASES", "MAX_QUERY_DEPTH", "CORS_ALLOW_ORIGINS",
    "GRAPHIQL", "INTROSPECTION", "SESSION_CACHE_NAMESPACE", "SESSION_CLEAN_INTERVAL", "SESSION_CLEAN_BATCH_SIZE",
    "LOGIN_RATE_LIMIT", "SESSION_MAX_LIFETIME",
)  # fmt: skip


@contextmanager
def live_server(tmp_path: Path, **settings: str) -> Iterator[int]:
    """Start the server with `settings` as environment variables; yields its port; stops it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in (*SETTINGS_VARIABLES, *MORE_SETTINGS)}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}",
        SUPERADMIN_PASSWORD="security-not-the-default",
        LOG_LEVEL="warning",
        PYTHONDONTWRITEBYTECODE="1",
        **settings,
    )
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
