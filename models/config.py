"""Tortoise configuration: one app, "models", with its migrations in models.migrations."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_DATABASE_URL = "sqlite://data/sessions.sqlite3"
#: The one connection, which every model uses.
CONNECTION = "default"


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {CONNECTION: _tuned(db_url)},
        "apps": {
            "models": {
                "models": ["models"],
                "default_connection": CONNECTION,
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _tuned(db_url: str) -> str:
    """SQLite in WAL mode (Tortoise's default) with synchronous=NORMAL: no fsync per commit, and
    still no corruption on a crash; at worst the last commits before a power loss are lost."""
    if db_url.startswith("sqlite://") and "synchronous=" not in db_url:
        return db_url + ("&" if "?" in db_url else "?") + "synchronous=NORMAL"
    return db_url


#: For the `tortoise` command line (makemigrations, migrate, sqlmigrate).
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
