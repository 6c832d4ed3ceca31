"""Shared fixtures: settings, an isolated database per test, the real app with its lifespan.

Every fixture here follows `backend`, so each test that uses one of them runs twice:

- ``sqlite``: a SQLite file in the test's tmp_path for the app (`make_settings`), an in-memory
  SQLite database for `db`, and the in-process session cache.
- ``postgres``: PostgreSQL (TEST_DATABASE_URL) and Redis (TEST_REDIS_URL). The pytest session
  creates one uniquely named database, migrated once, and drops it at the end (leftover
  connections terminated first); before each test it is emptied back to its freshly migrated
  state (every row but the migration records deleted, every sequence restarted), so each test
  starts from an empty, bootstrappable database of its own. Creating and dropping a database per
  test costs about 0.5 s here, emptying it about 15 ms. Each test also gets its own
  SESSION_CACHE_NAMESPACE, whose keys (SCAN MATCH on that namespace only) are deleted afterwards.

Where PostgreSQL or Redis cannot be reached (checked once per session, with short timeouts) the
postgres variant is skipped with the reason, or fails when REQUIRE_SERVICES=1. A test can narrow
the backends with `@pytest.mark.backends("postgres")`; `-k sqlite` or `-k postgres` picks one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
import redis
import redis.asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext, tortoise_test_context

from models.config import tortoise_config
from server.app import create_app
from server.bootstrap import bootstrap
from server.cache import build_login_limiter, build_session_cache
from server.clients import Clients
from server.services import Services
from server.settings import Settings
from tests.graphql import GraphQLClient

SettingsFactory = Callable[..., Settings]
ClientFactory = Callable[[Settings], Awaitable[GraphQLClient]]
T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("sqlite", "postgres")
#: Bounds on every call made to set up or tear down the services (seconds).
CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 30.0
MIGRATE_TIMEOUT = 120.0


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """TEST_REDIS_URL; skips (or fails with REQUIRE_SERVICES=1) when that Redis cannot be reached."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = f"Redis at {TEST_REDIS_URL} is unreachable: {error}"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        client.close()
    yield TEST_REDIS_URL


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", 'backends(*names): run the test only on these backends, e.g. backends("postgres")'
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that (directly or through a fixture) uses `backend` over BACKENDS."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = list(marker.args) if marker else list(BACKENDS)
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown backends {sorted(unknown)}")
    metafunc.parametrize("backend", names, indirect=True, ids=names)


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("backend")


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: no probe when no postgres test is left
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the postgres variants at once when a service is unreachable (one folded reason per file).

    With REQUIRE_SERVICES=1 nothing is skipped: the `backend` fixture fails each of them instead.
    """
    if services_required() or not any(_backend_of(item) == "postgres" for item in items):
        return
    reason = services_unreachable()
    if reason is not None:
        for item in items:
            if _backend_of(item) == "postgres":
                item.add_marker(pytest.mark.skip(reason=reason))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _run_in_thread(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run `coroutine()` on a private event loop in a worker thread.

    Session-wide setup and teardown happen outside the per-test event loops: a connection must never
    outlive the loop it was opened on, and the test loops are created and closed by pytest-asyncio.
    """

    async def main() -> T:
        return await coroutine()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


# --- The PostgreSQL + Redis services ------------------------------------------------------------


@dataclass(frozen=True)
class SharedServices:
    """PostgreSQL and Redis as this pytest session uses them: one migrated database, one Redis."""

    database_url: str  # postgres://…/<the session's database>, for Settings and Tortoise
    database: str
    redis_url: str
    reset_sql: str  # empties the database back to its freshly migrated state

    async def reset_database(self) -> None:
        """End connections a previous test left behind, then empty every table but the migrations'."""
        connection = await asyncpg.connect(
            _asyncpg_dsn(self.database_url), timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
        )
        try:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await connection.execute(self.reset_sql)
        finally:
            await connection.close()

    async def delete_namespace(self, namespace: str) -> None:
        """Delete the keys of one cache namespace, found with SCAN MATCH (never KEYS, never FLUSHDB)."""
        client = redis.asyncio.Redis.from_url(
            self.redis_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
        )
        try:
            keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
            for start in range(0, len(keys), 1000):
                await client.delete(*keys[start : start + 1000])
        finally:
            await client.aclose()


@dataclass(frozen=True)
class Unavailable:
    reason: str


def _probe_redis(url: str) -> str | None:
    """None if Redis answers PING within the timeouts, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"Redis at {url} is unreachable: {error}"
    finally:
        client.close()
    return None


async def _admin_connection() -> asyncpg.Connection:
    return await asyncpg.connect(
        _asyncpg_dsn(TEST_DATABASE_URL), timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
    )


async def _probe_postgres() -> str | None:
    try:
        connection = await _admin_connection()
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {TEST_DATABASE_URL} is unreachable: {type(error).__name__}: {error}"
    await connection.close()
    return None


async def _create_database(name: str) -> None:
    connection = await _admin_connection()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        # A throw-away database need not wait for its WAL to reach the disk at each commit: without
        # this, every autocommitted statement of a test costs an fsync. Visibility and locking are as
        # in production; only durability across a crash of the server differs.
        await connection.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    connection = await _admin_connection()
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _migrate(database_url: str) -> None:
    """Apply the migrations as operators do (`python -m server migrate`), in a process of its own."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrating the test database failed ({result.returncode}):\n{result.stderr}")


async def _reset_sql(database_url: str) -> str:
    """One transaction that deletes every row but the migration records (children before parents)
    and restarts every sequence: cheaper than TRUNCATE (new files, an fsync each) or a new database."""
    connection = await asyncpg.connect(
        _asyncpg_dsn(database_url), timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
    )
    try:
        tables = [
            row[0] for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        references = await connection.fetch(
            "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = 'public'"
        )
        sequences = [
            row[0]
            for row in await connection.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        ]
    finally:
        await connection.close()
    # TopologicalSorter orders a node after its predecessors: make each parent a predecessor of
    # nothing and each child a predecessor of its parents, so children are deleted first.
    graph: dict[str, set[str]] = {table.strip('"'): set() for table in tables if table != "tortoise_migrations"}
    for row in references:
        child, parent = row["child"].strip('"'), row["parent"].strip('"')
        if child in graph and parent in graph and child != parent:
            graph[parent].add(child)
    try:
        ordered = list(TopologicalSorter(graph).static_order())
        statements = [f'DELETE FROM "{table}";' for table in ordered]
    except CycleError:
        statements = [f"TRUNCATE {', '.join(f'{chr(34)}{table}{chr(34)}' for table in graph)} CASCADE;"]
    statements += [f'ALTER SEQUENCE "{name}" RESTART;' for name in sequences if not name.startswith("tortoise_")]
    return "SET lock_timeout = '10s'; BEGIN; " + " ".join(statements) + " COMMIT;"


@functools.cache
def services_unreachable() -> str | None:
    """Why PostgreSQL or Redis cannot be used, or None; probed once per session, with short timeouts."""
    return _run_in_thread(_probe_postgres) or _probe_redis(TEST_REDIS_URL)


def _start_shared_services() -> SharedServices | Unavailable:
    reason = services_unreachable()
    if reason is not None:
        return Unavailable(reason)
    name = f"pytest_sessions_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    database_url = urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}"))
    _run_in_thread(lambda: _create_database(name))
    try:
        _migrate(database_url)
        reset_sql = _run_in_thread(lambda: _reset_sql(database_url))
    except BaseException:
        _run_in_thread(lambda: _drop_database(name))
        raise
    return SharedServices(database_url=database_url, database=name, redis_url=TEST_REDIS_URL, reset_sql=reset_sql)


@pytest.fixture(scope="session")
def shared_services() -> Iterator[SharedServices | Unavailable]:
    """Checked once per session, on the first postgres test: the session's database and Redis."""
    services = _start_shared_services()
    try:
        yield services
    finally:
        if isinstance(services, SharedServices):
            _run_in_thread(lambda: _drop_database(services.database))


# --- The backend dimension ----------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """What a test's database and cache are: see the module docstring."""

    name: str
    #: The test's PostgreSQL database; None on sqlite (the app's SQLite file lives in tmp_path).
    database_url: str | None
    #: SESSION_CACHE: "memory", or the Redis URL.
    session_cache: str
    #: SESSION_CACHE_NAMESPACE: unique to the test on Redis.
    namespace: str

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


@pytest_asyncio.fixture
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The test's backend; on postgres, an emptied database before and its cache keys deleted after."""
    name: str = getattr(request, "param", "sqlite")
    if name == "sqlite":
        yield Backend(name="sqlite", database_url=None, session_cache="memory", namespace="sessions")
        return
    shared = request.getfixturevalue("shared_services")
    if isinstance(shared, Unavailable):
        if services_required():
            pytest.fail(f"{shared.reason} (REQUIRE_SERVICES=1)")
        pytest.skip(shared.reason)
    namespace = f"pytest.{uuid.uuid4().hex}"
    await shared.reset_database()
    try:
        yield Backend(
            name="postgres", database_url=shared.database_url, session_cache=shared.redis_url, namespace=namespace
        )
    finally:
        await shared.delete_namespace(namespace)


@pytest.fixture(autouse=True)
def fresh_tortoise_sql_cache() -> Iterator[None]:
    """Tortoise 1.1 caches each model's INSERT/UPDATE/DELETE SQL in the module-level EXECUTOR_CACHE
    (tortoise/backends/base/executor.py), keyed by (connection name, schema, table) but not by SQL
    dialect: once a SQLite test has run, a PostgreSQL connection also named "default" would be handed
    SQLite's `?` placeholders. Every test starts and ends with it empty. (A server process uses one
    database, hence one dialect, for its whole life, so it cannot hit this.)
    """
    EXECUTOR_CACHE.clear()
    yield
    EXECUTOR_CACHE.clear()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal costs in-process: the same code path, milliseconds instead of ~0.5 s a hash.

    Servers started as subprocesses (end-to-end tests) keep the production costs.
    """
    monkeypatch.setattr(
        "server.services.passwords._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def make_settings(tmp_path: Path, backend: Backend) -> SettingsFactory:
    """Settings for a test on its backend: its own SQLite file and the in-process cache, or its own
    PostgreSQL database and Redis namespace. Overrides win."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any]
        if backend.database_url is None:
            values = {"database_url": f"sqlite://{tmp_path / 'sessions.sqlite3'}"}
        else:
            values = {
                "database_url": backend.database_url,
                "session_cache": backend.session_cache,
                "session_cache_namespace": backend.namespace,
            }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest_asyncio.fixture
async def db(backend: Backend) -> AsyncIterator[TortoiseContext]:
    """The test's database with the schema, bootstrapped (default channel, superadmin): in-memory
    SQLite, or the test's PostgreSQL database (migrated)."""
    if backend.database_url is None:
        async with tortoise_test_context(["models"]) as context:
            await bootstrap(Settings())
            yield context
        return
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(backend.database_url))
        await bootstrap(Settings())
        yield context


@pytest_asyncio.fixture
async def services(db: TortoiseContext, settings: Settings) -> AsyncIterator[Services]:
    """Every service on the test's database and on the cache its settings name (memory or Redis)."""
    clients = Clients.from_settings(settings)
    namespace = settings.session_cache_namespace
    cache = build_session_cache(settings, namespace, redis=clients.redis)
    try:
        yield Services.build(cache, settings, build_login_limiter(settings, clients.redis, namespace))
    finally:
        await cache.close()
        await clients.close()


@pytest_asyncio.fixture
async def make_client(backend: Backend) -> AsyncIterator[ClientFactory]:
    """Start the real app (lifespan included) for given settings; returns a GraphQLClient.

    It depends on `backend` so that the apps are shut down before the backend is cleaned.
    """
    stack: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def factory(settings: Settings) -> GraphQLClient:
        manager = LifespanManager(create_app(settings))
        await manager.__aenter__()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver")
        stack.append((manager, http))
        return GraphQLClient(http)

    yield factory
    for manager, http in reversed(stack):
        await http.aclose()
        await manager.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def client(make_client: ClientFactory, settings: Settings) -> GraphQLClient:
    """The app on the default settings (cookie and bearer), with a cookie-keeping HTTP client."""
    result: GraphQLClient = await make_client(settings)
    return result


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty, uniquely named PostgreSQL database (outside the backend matrix), force-dropped afterwards."""
    try:
        admin = await asyncpg.connect(TEST_DATABASE_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if services_required():
            pytest.fail(f"PostgreSQL at {TEST_DATABASE_URL} is unreachable and REQUIRE_SERVICES=1: {error}")
        pytest.skip(f"PostgreSQL at {TEST_DATABASE_URL} is unreachable: {error}")
    name = f"fresh_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
