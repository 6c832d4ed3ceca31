"""Opening the database: create the SQLite folder, apply migrations, initialise Tortoise."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.context import set_global_context
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate

from models.config import CONNECTION, tortoise_config
from server.sqlite_reads import close_reader, open_reader
from server.workers import prepared_by_parent

#: Key of the PostgreSQL advisory lock held while migrating or bootstrapping (advisory locks are per database).
STARTUP_LOCK_KEY = 0x5E5510_0001
_POSTGRES_SCHEMES = ("postgres://", "postgresql://", "asyncpg://")
#: The first SQLite with DELETE ... RETURNING, which every bulk delete of sessions uses (services/session_deletes.py).
MIN_SQLITE_VERSION = (3, 35, 0)


@asynccontextmanager
async def startup_lock(db_url: str) -> AsyncIterator[None]:
    """Run the block alone among the processes that share this PostgreSQL database.

    Instances started together would otherwise migrate at once (concurrent CREATE TABLEs fail) and
    race through the first-start bootstrap. A session-level advisory lock on a connection of its own:
    closing it releases the lock, also when the holder dies. Nothing to do for SQLite.
    """
    if not is_postgres(db_url):
        yield
        return
    connection = await connect_postgres(db_url)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", STARTUP_LOCK_KEY)
        yield
    finally:
        await connection.close()


def is_postgres(db_url: str) -> bool:
    return db_url.startswith(_POSTGRES_SCHEMES)


async def connect_postgres(db_url: str, application_name: str | None = None) -> asyncpg.Connection:
    """A connection of its own to the PostgreSQL database of `db_url`, outside Tortoise's pool."""
    credentials = expand_db_url(db_url)["credentials"]
    return await asyncpg.connect(
        server_settings={"application_name": application_name} if application_name else None,
        host=credentials.get("host"),
        port=credentials.get("port"),
        user=credentials.get("user"),
        password=credentials.get("password"),
        database=credentials.get("database"),
        ssl=credentials.get("ssl"),
    )


async def notify(channel: str, payload: str) -> None:
    """NOTIFY `channel` with `payload`, on a connection of the pool (PostgreSQL only)."""
    await database_connection().execute_query("SELECT pg_notify($1, $2)", [channel, payload])


def check_sqlite_version(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Refuse to start on a SQLite older than MIN_SQLITE_VERSION rather than fail at the first bulk delete."""
    if version < MIN_SQLITE_VERSION:
        found, needed = (".".join(map(str, v)) for v in (version, MIN_SQLITE_VERSION))
        raise RuntimeError(f"SQLite {found} is too old: {needed} or later is needed (DELETE ... RETURNING)")


async def open_database(db_url: str, apply_migrations: bool = True) -> None:
    if db_url.startswith("sqlite://"):
        check_sqlite_version()
        path = db_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    config = tortoise_config(db_url)
    # A worker's parent migrated before starting it (server/workers.py).
    if apply_migrations and not prepared_by_parent():
        async with startup_lock(db_url):
            try:
                await migrate(config=config)
            finally:  # also when a migration fails: an open SQLite connection's thread keeps the process alive
                await Tortoise.close_connections()
    # Requests run in other tasks than the lifespan, so the context must be reachable globally.
    set_global_context(await Tortoise.init(config=config))
    _quiet_pool_reconnects()
    if db_url.startswith("sqlite://") and db_url != "sqlite://:memory:":
        writer = database_connection()
        await writer.execute_query("SELECT 1")  # the writer connection opened the file in WAL mode
        open_reader(db_url.removeprefix("sqlite://").split("?", 1)[0], writer)


async def close_database() -> None:
    close_reader()
    await Tortoise.close_connections()


def parameters(dialect: str, count: int) -> list[str]:
    """`count` placeholders of hand-written SQL in `dialect`'s style: $1, $2, ... on PostgreSQL, ? on SQLite."""
    return [f"${n}" for n in range(1, count + 1)] if dialect == "postgres" else ["?"] * count


def database_connection() -> BaseDBAsyncClient:
    """The connection every model uses, in the current Tortoise context (what `Model._meta.db` returns)."""
    return get_connection(CONNECTION)


async def database_is_reachable() -> bool:
    try:
        await database_connection().execute_query("SELECT 1")
    except Exception:
        return False
    return True


#: Errors that mean "no usable connection to the database", as opposed to a bad query or a bug.
_UNAVAILABLE = (
    DBConnectionError,  # Tortoise could not open its pool
    OSError,  # refused, reset or timed out at the socket (ConnectionError, TimeoutError, ...)
    asyncpg.PostgresConnectionError,  # class 08, e.g. the connection was closed mid-operation
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.AdminShutdownError,  # the server terminated the session (fast shutdown, restart)
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def is_database_unavailable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the database cannot be reached right now.

    asyncpg's pool reconnects by itself once the server is back, so these errors last as long as
    the outage does and need no restart.
    """
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, _UNAVAILABLE):
            return True
        # "connection is closed" / "pool is closing"; other InterfaceErrors are misuse, not an outage.
        if isinstance(current, asyncpg.InterfaceError) and "clos" in str(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


class _OneLine(logging.Filter):
    """asyncpg's pool logs each failed reconnect with a full traceback: keep the line, drop the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_pool_reconnects() -> None:
    pool_logger = logging.getLogger("asyncpg.pool")
    if not any(isinstance(existing, _OneLine) for existing in pool_logger.filters):
        pool_logger.addFilter(_OneLine())
