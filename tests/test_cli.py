"""`python -m server` as operators run it: subprocesses from the repository root on a temporary database."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.context import TortoiseContext

from models import Session, SessionType
from models.config import tortoise_config
from schema.schema import build_schema
from tests.live_server import REPO_ROOT, SERVER_SETTINGS


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'nested' / 'sessions.sqlite3'}"


def run_server(*args: str, database_url: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=database_url, **environ)
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite://"))


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ((), "PORT", "http"),
        (("serve",), "SESSION_DURATION", "forever"),
        (("migrate",), "TOKEN_METHOD", "header"),
        (("clean-sessions",), "SESSION_CACHE", "memcache"),
        ((), "HOST", "0.0.0.0:8000"),
        ((), "SUPERADMIN_IDENTIFIER", "x" * 300),
    ],
)
def test_bad_setting_exits_2_with_one_line_naming_the_variable(
    database_url: str, command: tuple[str, ...], variable: str, value: str
) -> None:
    result = run_server(*command, database_url=database_url, **{variable: value})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr
    assert not sqlite_path(database_url).exists()


def test_bad_database_url_error_hides_the_password(database_url: str) -> None:
    result = run_server("migrate", database_url="postgres://app:Sup3r-s3cret@/")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Sup3r-s3cret" not in result.stderr


def test_migrate_creates_the_sqlite_file_with_the_tables(database_url: str) -> None:
    result = run_server("migrate", database_url=database_url)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"channels", "roles", "users", "orders", "order_lines", "sessions"} <= tables


def test_migrate_twice_is_harmless(database_url: str) -> None:
    assert run_server("migrate", database_url=database_url).returncode == 0
    second = run_server("migrate", database_url=database_url)
    assert second.returncode == 0, second.stderr


def test_export_schema_prints_the_sdl(database_url: str) -> None:
    result = run_server("export-schema", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == build_schema().as_str() + "\n"
    assert "type Query" in result.stdout


def test_export_schema_writes_the_output_file(tmp_path: Path, database_url: str) -> None:
    output = tmp_path / "schema.graphql"
    result = run_server("export-schema", "--output", str(output), database_url=database_url)
    assert (result.returncode, result.stdout) == (0, "")
    assert output.read_text() == build_schema().as_str() + "\n"


async def _insert_sessions(database_url: str, expired: int, live: int) -> tuple[list[str], list[str]]:
    now = datetime.now(UTC)
    expired_hashes = [secrets.token_hex(32) for _ in range(expired)]
    live_hashes = [secrets.token_hex(32) for _ in range(live)]
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(database_url))
        for token_hash in expired_hashes:
            await Session.create(
                token_hash=token_hash, type=SessionType.ANONYMOUS, expires=now - timedelta(hours=1), last_active_at=now
            )
        for token_hash in live_hashes:
            await Session.create(
                token_hash=token_hash, type=SessionType.ANONYMOUS, expires=now + timedelta(days=1), last_active_at=now
            )
    return expired_hashes, live_hashes


def _stored_hashes(database_url: str) -> set[str]:
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        return {row[0] for row in connection.execute("SELECT token_hash FROM sessions")}


async def test_clean_sessions_drains_the_whole_backlog_in_batches(database_url: str) -> None:
    assert run_server("migrate", database_url=database_url).returncode == 0
    expired, live = await _insert_sessions(database_url, expired=5, live=2)
    assert _stored_hashes(database_url) == set(expired) | set(live)

    result = run_server("clean-sessions", "--batch-size", "2", database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed 5 sessions"
    assert _stored_hashes(database_url) == set(live)


@pytest.mark.parametrize("batch_size", ["0", "-1", "two", "100001"])
def test_clean_sessions_rejects_a_bad_batch_size(database_url: str, batch_size: str) -> None:
    result = run_server("clean-sessions", "--batch-size", batch_size, database_url=database_url)
    assert result.returncode == 2
    assert "--batch-size" in result.stderr and "Traceback" not in result.stderr
    assert not sqlite_path(database_url).exists()


def test_an_unreachable_database_stops_the_server_with_one_line(tmp_path: Path) -> None:
    # given a PostgreSQL URL on a port where nothing listens
    unreachable = "postgres://postgres:hunter2@127.0.0.1:9/sessions"

    # when the server starts
    result = run_server(database_url=unreachable)

    # then it exits 1 with one line that names the setting and never shows the password
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (1, 1), result.stderr
    assert lines[0].startswith("error: cannot open the database named by DATABASE_URL")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
