"""WEB_CONCURRENCY: several worker processes on one port, and the configurations refused at start
(server/workers.py, server/commands/serve.py, server/instance_lock.py). Real servers only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from server.instance_lock import InstanceLockError, instance_lock
from server.settings import Settings, SettingsError
from tests.live_server import REPO_ROOT, SERVER_SETTINGS, free_port, live_server, live_server_process, stop_process
from tests.metrics_text import ACTIVE_SESSION, graphql, new_session_token, samples, worker_lookups

SPREAD_ATTEMPTS = 300
WAIT_SECONDS = 60.0  # a bound, not a sleep: a loaded machine can be slow to reap and restart a worker


def _run_refused(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(
        HOST="127.0.0.1",
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}",
        SUPERADMIN_PASSWORD="live-server-not-the-default",
        LOG_LEVEL="warning",
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "server"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30
    )


def _spread_lookups(base: str, token: str, workers: int) -> dict[str, float]:
    """activeSession requests, each on a new connection, until `workers` processes have answered one."""
    for sent in range(1, SPREAD_ATTEMPTS + 1):
        assert graphql(base, ACTIVE_SESSION, token)["data"]["activeSession"] is not None
        if sent % 10 == 0:
            by_worker = worker_lookups(httpx.get(f"{base}/metrics", timeout=5).text)
            if len(by_worker) >= workers:
                return by_worker
    pytest.fail(f"fewer than {workers} workers answered {SPREAD_ATTEMPTS} requests")


def test_web_concurrency_is_read_and_bounded() -> None:
    assert Settings.from_env({}).web_concurrency == 1
    assert Settings.from_env({"WEB_CONCURRENCY": "4"}).web_concurrency == 4
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError) as error:
            Settings.from_env({"WEB_CONCURRENCY": bad})
        assert str(error.value) == f"WEB_CONCURRENCY={bad!r} is not valid: expected a whole number from 1 to 64"


async def test_two_workers_serve_one_port_after_migrating_and_bootstrapping_once(
    tmp_path: Path, postgres_url: str
) -> None:
    # given two workers on one PostgreSQL, each with its in-process cache
    with live_server_process(
        tmp_path, DATABASE_URL=postgres_url, SESSION_CACHE="memory", WEB_CONCURRENCY="2", LOG_LEVEL="info"
    ) as (port, process):
        base = f"http://127.0.0.1:{port}"
        token = new_session_token(base)

        # when lookups arrive on new connections
        by_worker = _spread_lookups(base, token, workers=2)

        # then both workers answered on the one port, and a scrape sums both workers' histograms
        assert len(by_worker) == 2 and all(count > 0 for count in by_worker.values())
        text = httpx.get(f"{base}/metrics", timeout=5).text
        assert samples(text)["session_service_session_lookup_seconds_count"] == sum(worker_lookups(text).values()) >= 10
        # and the graceful shutdown stops both workers without a kill
        assert not stop_process(process)
        assert process.returncode == 0
    log = (tmp_path / "server.log").read_text()
    assert log.count("Started server process") == 2
    assert log.count("Finished server process") == 2
    assert log.count("created the superadmin user") == 1

    connection = await asyncpg.connect(postgres_url.replace("postgres://", "postgresql://", 1))
    try:
        migrations = await connection.fetch("SELECT app, name FROM tortoise_migrations")
        superadmins = await connection.fetchval("SELECT count(*) FROM users WHERE is_superadmin")
    finally:
        await connection.close()
    assert len(migrations) == len({(row["app"], row["name"]) for row in migrations}) > 0
    assert superadmins == 1


def test_a_worker_that_dies_is_reported_and_replaced(tmp_path: Path, redis_url: str) -> None:
    # given two workers (SQLite with Redis: instances learn of each other's deletes through Redis),
    # metrics on a listener of their own in the parent
    metrics_port = free_port()
    with live_server_process(
        tmp_path,
        SESSION_CACHE=redis_url,
        SESSION_CACHE_NAMESPACE=f"workers-{os.getpid()}-{time.monotonic_ns()}",
        WEB_CONCURRENCY="2",
        METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
        MAX_HEADER_BYTES="2048",
    ) as (port, process):
        base, metrics_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 404
        # the workers' protocol keeps the head limit
        assert httpx.get(f"{base}/health", headers={"x-padding": "a" * 4096}, timeout=5).status_code == 431
        token = new_session_token(base)
        by_worker = _spread_lookups_through(base, metrics_base, token)

        # when one worker is killed
        victim = int(next(iter(by_worker)))
        os.kill(victim, signal.SIGKILL)

        # then the parent reports it, whatever LOG_LEVEL, and another worker takes its place
        log = tmp_path / "server.log"
        deadline = time.monotonic() + WAIT_SECONDS
        while f"worker [{victim}] exited with code -9" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for _ in range(20):
            assert graphql(base, ACTIVE_SESSION, token)["data"]["activeSession"] is not None
        assert str(victim) not in worker_lookups(httpx.get(f"{metrics_base}/metrics", timeout=5).text)
        assert process.poll() is None


def _spread_lookups_through(base: str, metrics_base: str, token: str) -> dict[str, float]:
    for sent in range(1, SPREAD_ATTEMPTS + 1):
        graphql(base, ACTIVE_SESSION, token)
        if sent % 10 == 0:
            by_worker = worker_lookups(httpx.get(f"{metrics_base}/metrics", timeout=5).text)
            if len(by_worker) >= 2:
                return by_worker
    pytest.fail("fewer than 2 workers answered")


def test_workers_on_sqlite_with_the_memory_cache_are_refused(tmp_path: Path) -> None:
    result = _run_refused(tmp_path, SESSION_CACHE="memory", WEB_CONCURRENCY="2")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: WEB_CONCURRENCY=2 is refused with SESSION_CACHE=memory on SQLite: the workers could not learn of"
        " each other's deleted sessions; use SESSION_CACHE=redis://… or a PostgreSQL DATABASE_URL to run several,"
        " or WEB_CONCURRENCY=1\n"
    )
    assert not (tmp_path / "sessions.sqlite3").exists()  # refused before anything was made


def test_a_second_server_on_one_sqlite_file_with_the_memory_cache_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "sessions.sqlite3"
    with live_server(tmp_path, SESSION_CACHE="memory") as port:
        result = _run_refused(tmp_path, SESSION_CACHE="memory")

        assert result.returncode == 2
        assert result.stderr == (
            f"error: another server process is serving {database} with SESSION_CACHE=memory, and neither could"
            " learn of the other's deleted sessions; use SESSION_CACHE=redis://… or a PostgreSQL DATABASE_URL to"
            " run several\n"
        )
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    # the lock goes with its holder: the next server starts
    with live_server(tmp_path, log_name="second.log", SESSION_CACHE="memory"):
        pass


def test_the_instance_lock_is_exclusive_and_only_for_sqlite_with_the_memory_cache(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    memory = Settings(database_url=url, session_cache="memory")
    with instance_lock(memory):
        assert (tmp_path / "db.sqlite3.instance.lock").exists()
        with pytest.raises(InstanceLockError), instance_lock(memory):
            pass
        with instance_lock(Settings(database_url=url, session_cache="noop")):
            pass
    with instance_lock(memory):  # released on the way out
        pass
    with (
        instance_lock(Settings(database_url="sqlite://:memory:")),
        instance_lock(Settings(database_url="sqlite://:memory:")),
    ):
        pass


def test_the_refusal_line_is_not_a_settings_error_for_the_operators_commands(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}", WEB_CONCURRENCY="2")
    result = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
