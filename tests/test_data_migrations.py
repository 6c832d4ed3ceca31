"""Migrations 0003 and 0004 on databases the service already ran on: the superadmin is marked, stored
identifiers are normalised, and collisions stop the migration with every user named, nothing changed.

Each test builds a database migrated only up to an older migration, fills it as the older service
left it, then migrates it as a start does (SQLite file, and a fresh PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate

from models import Permission, Role, User
from models.config import tortoise_config
from server.bootstrap import bootstrap
from server.database import close_database, open_database
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.identifiers import IdentifierConflictError
from server.settings import Settings
from tests.live_server import REPO_ROOT, SERVER_SETTINGS

NOW = "'2026-01-01T00:00:00+00:00'"
SUPER_ADMIN_ROLE = [
    f"INSERT INTO channels (id, created_at, updated_at, code, token, is_default)"
    f" VALUES (1, {NOW}, {NOW}, '__default_channel__', 'default-token', TRUE)",
    f"INSERT INTO roles (id, created_at, updated_at, code, description, permissions)"
    f" VALUES (1, {NOW}, {NOW}, '{SUPER_ADMIN_ROLE_CODE}', 'SuperAdmin', '[\"SuperAdmin\"]')",
    "INSERT INTO role_channels (roles_id, channel_id) VALUES (1, 1)",
]
COLLIDING = ["alice", "bob", "ALICE", "ａｌｉｃｅ", "\u200b", "Bob ", "carol"]


def users(*identifiers: str) -> list[str]:
    """INSERTs of users 1, 2, … with these identifiers (no password)."""
    return [
        f"INSERT INTO users (id, created_at, updated_at, identifier, verified)"
        f" VALUES ({number}, {NOW}, {NOW}, '{identifier}', TRUE)"
        for number, identifier in enumerate(identifiers, start=1)
    ]


def holding_super_admin(*user_ids: int) -> list[str]:
    return [f"INSERT INTO user_roles (users_id, role_id) VALUES ({user_id}, 1)" for user_id in user_ids]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'old.sqlite3'}"
    else:
        yield request.getfixturevalue("postgres_url")


async def database_at(url: str, migration: str, statements: list[str]) -> None:
    """A database migrated up to `migration` only, then filled by `statements`."""
    await migrate(config=tortoise_config(url), target=f"models.{migration}")
    try:
        connection = Tortoise.get_connection("default")
        for statement in statements:
            await connection.execute_script(statement)
    finally:
        await Tortoise.close_connections()


async def stored_identifiers() -> list[str]:
    return [user.identifier for user in await User.all().order_by("id")]


# -- 0004: identifiers -------------------------------------------------------------------------------


async def test_migration_gives_stored_identifiers_their_normal_form(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await database_at(database_url, "0003_superadmin_mark", users("superadmin", "Alice@Example.COM", "bob\u200b"))

    with caplog.at_level(logging.WARNING):
        await open_database(database_url)
    try:
        assert await stored_identifiers() == ["superadmin", "alice@example.com", "bob"]
    finally:
        await close_database()
    assert "normalised the identifiers of 2 user(s): ids 2, 3" in caplog.messages


async def test_migration_stops_on_colliding_identifiers_names_every_user_and_changes_nothing(
    database_url: str,
) -> None:
    await database_at(database_url, "0003_superadmin_mark", users(*COLLIDING))

    with pytest.raises(IdentifierConflictError) as raised:
        await open_database(database_url)
    await close_database()

    assert str(raised.value).startswith(
        "user identifiers cannot all be normalised: users 1, 3, 4 would all be 'alice'; users 2, 6 would all be"
        " 'bob'; user(s) 5 would have an empty identifier."
    )
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        assert await stored_identifiers() == COLLIDING
    finally:
        await Tortoise.close_connections()


def test_migrate_command_reports_colliding_identifiers_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    asyncio.run(database_at(url, "0003_superadmin_mark", users("Alice", "alice")))
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=url, LOG_LEVEL="warning")

    result = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: migrate failed: IdentifierConflictError: user identifiers cannot all be normalised: users 1, 2"
        " would all be 'alice'. Give each of these users a distinct visible identifier of 1 to 255 characters,"
        " then migrate again"
    ]


# -- 0003: the superadmin's mark ---------------------------------------------------------------------


async def test_migration_marks_the_renamed_superadmin_and_no_default_one_is_created(database_url: str) -> None:
    # given the superadmin renamed "root", and a user named "superadmin" made since (issue 7, point 4)
    statements = SUPER_ADMIN_ROLE + users("root", "superadmin") + holding_super_admin(1)
    await database_at(database_url, "0002_idle_session_index", statements)

    # when the new version starts on it, without SUPERADMIN_PASSWORD
    await open_database(database_url)
    try:
        await bootstrap(Settings(database_url=database_url))

        # then root is the superadmin, holding every permission again, and nobody else was made or promoted
        marked = [user.identifier for user in await User.filter(is_superadmin=True)]
        holders = [user.identifier for user in await User.filter(roles__code=SUPER_ADMIN_ROLE_CODE)]
        role = await Role.get(code=SUPER_ADMIN_ROLE_CODE)
        assert (marked, holders, await stored_identifiers()) == (["root"], ["root"], ["root", "superadmin"])
        assert role.permissions == [permission.value for permission in Permission]
    finally:
        await close_database()


async def test_migration_marks_nobody_when_the_first_user_lost_the_role_and_the_bootstrap_creates_nobody(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given a first user stripped of the SuperAdmin role, which a later user holds
    statements = SUPER_ADMIN_ROLE + users("superadmin", "usurper") + holding_super_admin(2)
    await database_at(database_url, "0002_idle_session_index", statements)

    await open_database(database_url)
    try:
        with caplog.at_level(logging.ERROR):
            await bootstrap(Settings(database_url=database_url))
        assert await User.filter(is_superadmin=True).count() == 0
        assert await stored_identifiers() == ["superadmin", "usurper"]
    finally:
        await close_database()
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["server.bootstrap"]
