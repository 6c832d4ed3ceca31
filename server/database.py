"""Opening the database: create the SQLite folder, apply migrations, initialise Tortoise."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from models.config import tortoise_config


async def open_database(db_url: str, apply_migrations: bool = True) -> None:
    if db_url.startswith("sqlite://"):
        path = db_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    config = tortoise_config(db_url)
    if apply_migrations:
        await migrate(config=config)
        await Tortoise.close_connections()
    # Requests run in other tasks than the lifespan, so the context must be reachable globally.
    await Tortoise.init(config=config, _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def database_is_reachable() -> bool:
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
    except Exception:
        return False
    return True
