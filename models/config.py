"""Tortoise configuration: one app, "models", with its migrations in models.migrations."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_DATABASE_URL = "sqlite://data/sessions.sqlite3"


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": db_url},
        "apps": {
            "models": {
                "models": ["models"],
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


#: For the `tortoise` command line (makemigrations, migrate, sqlmigrate).
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
