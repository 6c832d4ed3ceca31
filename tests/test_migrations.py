"""models/migrations builds every table of models/, and is not out of date with the models."""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
from pathlib import Path

import asyncpg
import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.writer import MigrationWriter

from models import __models__
from models.config import tortoise_config
from server.database import close_database, open_database

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
MIGRATIONS_TABLE = "tortoise_migrations"


def expected_columns() -> dict[str, set[str]]:
    """Every table the models need (M2M link tables included), with the columns Tortoise reads."""
    tables: dict[str, set[str]] = {}
    for model in __models__:
        tables[model._meta.db_table] = set(model._meta.fields_db_projection.values())
        for name in model._meta.m2m_fields:
            field = model._meta.fields_map[name]
            tables.setdefault(field.through, set()).update({field.forward_key, field.backward_key})  # type: ignore[attr-defined]
    return tables


def sqlite_columns(path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(path) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: {row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')} for name in names}


def test_models_declare_every_table() -> None:
    assert {"channels", "roles", "users", "orders", "order_lines", "sessions", "role_channels", "user_roles"} <= set(
        expected_columns()
    )


async def test_migrations_create_every_table_of_the_models_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "sessions.sqlite3"
    await open_database(f"sqlite://{path}")
    try:
        expected = expected_columns()
    finally:
        await close_database()
    actual = sqlite_columns(path)
    assert MIGRATIONS_TABLE in actual
    for table, columns in expected.items():
        assert table in actual, f"the migrations do not create {table}"
        assert columns <= actual[table], f"{table} lacks {sorted(columns - actual[table])}"


async def _detect_changes(migrations_module: str) -> list[MigrationWriter]:
    """What `tortoise makemigrations` would write, without writing it."""
    config = tortoise_config("sqlite://:memory:")
    apps_config = {label: {**app, "migrations": migrations_module} for label, app in config["apps"].items()}
    async with TortoiseContext() as context:
        await context.init(config={**config, "apps": apps_config})
        assert context.apps is not None
        return await MigrationAutodetector(context.apps, apps_config).changes()


async def test_committed_migrations_match_the_models() -> None:
    writers = await _detect_changes("models.migrations")
    pending = "\n\n".join(writer.as_string() for writer in writers)
    assert writers == [], f"models/ changed without a migration: run `tortoise makemigrations`\n{pending}"


async def test_autodetector_sees_every_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Control for the test above: against no migrations at all, every model must be reported as new.
    package = f"no_migrations_{secrets.token_hex(4)}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        writers = await _detect_changes(package)
    finally:
        sys.modules.pop(package, None)
    created = {getattr(operation, "name", None) for writer in writers for operation in writer.operations}
    assert {model.__name__ for model in __models__} <= created


async def test_migrations_create_every_table_of_the_models_on_postgres(postgres_url: str) -> None:
    await open_database(postgres_url)
    try:
        expected = expected_columns()
    finally:
        await close_database()
    connection = await asyncpg.connect(postgres_url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
        applied = await connection.fetchval(f'SELECT count(*) FROM "{MIGRATIONS_TABLE}"')
    finally:
        await connection.close()
    actual: dict[str, set[str]] = {}
    for row in rows:
        actual.setdefault(row["table_name"], set()).add(row["column_name"])
    assert applied == len(list((REPO_ROOT / "models/migrations").glob("[0-9]*.py")))
    for table, columns in expected.items():
        assert table in actual, f"the migrations do not create {table}"
        assert columns <= actual[table], f"{table} lacks {sorted(columns - actual[table])}"
