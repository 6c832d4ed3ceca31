"""The clean job on several instances at once (PostgreSQL), and the scheduled clean-up in the lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
import redis
from asgi_lifespan import LifespanManager
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models import Order, Session, SessionType, User
from server.app import create_app
from server.cache import GuardedSessionCache, build_cache_strategy
from server.database import close_database, open_database
from server.housekeeping import scheduled_session_clean
from server.services.session import SessionService
from server.services.tokens import token_digest
from server.settings import Settings
from tests.services.support import RecordingCache

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = timedelta(days=1)
#: Expired this long ago, within RECENTLY_EXPIRED: the clean forgets their cached copies, so the cache's
#: delete calls show which cleaner removed which session.
EXPIRED_AGO = timedelta(minutes=1)
CLEANERS = 6


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@pytest_asyncio.fixture
async def postgres() -> AsyncIterator[str]:
    """A fresh, uniquely named PostgreSQL database, migrated and opened with Tortoise; dropped afterwards."""
    try:
        admin = await asyncpg.connect(_asyncpg_dsn(TEST_DATABASE_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at {TEST_DATABASE_URL} is unreachable and REQUIRE_SERVICES=1: {error}")
        pytest.skip(f"PostgreSQL at {TEST_DATABASE_URL} is unreachable: {error}")
    name = f"housekeeping_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    # A pool large enough for every cleaner to hold its own connection at once.
    url = urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}", query=f"maxsize={CLEANERS + 2}"))
    # Tortoise caches INSERT statements per connection name, not per dialect: start from a clean cache.
    EXECUTOR_CACHE.clear()
    try:
        await open_database(url)
        try:
            yield url
        finally:
            await close_database()
    finally:
        EXECUTOR_CACHE.clear()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _sessions(count: int, now: datetime, *, expires: timedelta, idle: timedelta, **fields: object) -> set[str]:
    """Insert `count` sessions expiring `expires` from now, last active `idle` ago; their token digests."""
    hashes = [secrets.token_hex(32) for _ in range(count)]
    fields.setdefault("type", SessionType.ANONYMOUS)
    await Session.bulk_create(
        [
            Session(token_hash=token_hash, expires=now + expires, last_active_at=now - idle, **fields)
            for token_hash in hashes
        ]
    )
    return set(hashes)


async def _stored_hashes() -> set[str]:
    return {str(token_hash) for token_hash in await Session.all().values_list("token_hash", flat=True)}


async def test_concurrent_cleaners_on_postgres_remove_every_eligible_session_exactly_once(postgres: str) -> None:
    # given 1000 eligible sessions (expired, and idle guests without an order), and sessions to keep
    now = datetime.now(UTC)
    user = await User.create(identifier="alice")
    order = await Order.create(code="CART-1")
    eligible = await _sessions(600, now, expires=-EXPIRED_AGO, idle=timedelta(0))
    eligible |= await _sessions(100, now, expires=-EXPIRED_AGO, idle=30 * DAY)  # expired and idle: counted once
    eligible |= await _sessions(300, now, expires=DAY, idle=8 * DAY)
    kept = await _sessions(50, now, expires=DAY, idle=timedelta(0))
    kept |= await _sessions(20, now, expires=DAY, idle=30 * DAY, active_order_id=order.id)
    kept |= await _sessions(20, now, expires=DAY, idle=30 * DAY, type=SessionType.AUTHENTICATED, user_id=user.id)

    # when six instances drain the backlog at the same time, in batches of 40, each on its own connection
    caches = [RecordingCache() for _ in range(CLEANERS)]
    cleaners = [SessionService(GuardedSessionCache(cache), Settings()) for cache in caches]
    results = await asyncio.gather(*(cleaner.drain_expired_sessions(40) for cleaner in cleaners))

    # then every eligible session is removed once: the totals add up, and no two cleaners removed the same one
    assert sum(results) == len(eligible) == 1000
    assert await _stored_hashes() == kept
    evicted = [key for cache in caches for op, key in cache.calls if op == "delete"]
    assert len(evicted) == len(set(evicted)) == len(eligible)
    assert set(evicted) == eligible
    assert sum(1 for removed in results if removed) > 1, f"the cleaners did not share the work: {results}"


async def test_a_cleaner_skips_sessions_another_transaction_holds_instead_of_waiting(postgres: str) -> None:
    # given five expired sessions, two of them locked by another connection (another cleaner mid-batch)
    now = datetime.now(UTC)
    expired = sorted(await _sessions(5, now, expires=-EXPIRED_AGO, idle=timedelta(0)))
    held, free = expired[:2], expired[2:]
    other = await asyncpg.connect(_asyncpg_dsn(postgres.split("?", 1)[0]), timeout=5)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT id FROM sessions WHERE token_hash = ANY($1::text[]) FOR UPDATE", held)
        cache = RecordingCache()
        cleaner = SessionService(GuardedSessionCache(cache), Settings())

        # when a clean runs while they are held: it neither waits nor touches them
        removed = await asyncio.wait_for(cleaner.drain_expired_sessions(10), timeout=10)
        assert removed == 3
        assert await _stored_hashes() == set(held)
        assert {key for op, key in cache.calls if op == "delete"} == set(free)
        await transaction.rollback()
    finally:
        await other.close()

    # then the next clean removes them
    assert await cleaner.drain_expired_sessions(10) == 2
    assert await _stored_hashes() == set()


async def test_a_large_batch_is_evicted_from_a_shared_redis_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given 300 cached sessions in Redis (more than its connection pool holds), all expired
    settings = Settings(
        session_cache=TEST_REDIS_URL,
        session_cache_namespace=f"housekeeping-{secrets.token_hex(6)}",
        session_cache_timeout_ms=2000,
    )
    cache = build_cache_strategy(settings, namespace=settings.session_cache_namespace)
    await open_database(f"sqlite://{tmp_path / 'sessions.sqlite3'}")
    try:
        try:
            await cache.get("probe")
        except Exception as error:
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail(f"Redis at {TEST_REDIS_URL} is unreachable and REQUIRE_SERVICES=1: {error}")
            pytest.skip(f"Redis at {TEST_REDIS_URL} is unreachable: {error}")
        sessions = SessionService(GuardedSessionCache(cache), settings)
        tokens = [(await sessions.create_anonymous_session()).token for _ in range(300)]
        assert all([await cache.get(token_digest(token)) for token in tokens])
        # A minute ago: the clean forgets the copies of sessions that expired this recently (RECENTLY_EXPIRED)
        await Session.all().update(expires=datetime.now(UTC) - timedelta(minutes=1))

        # when one batch removes them all
        caplog.set_level(logging.WARNING, logger="server.cache.guarded")
        assert await sessions.clean_expired_sessions(1000) == 300

        # then every cached copy is gone too, and no delete failed (a failure would clear the whole cache)
        assert [token for token in tokens if await cache.get(token_digest(token)) is not None] == []
        assert [record.getMessage() for record in caplog.records] == []
    finally:
        await cache.close()
        await close_database()
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{settings.session_cache_namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass  # unreachable: the test was skipped or failed for it already
        finally:
            client.close()


class _FlakySessions:
    """Stands in for SessionService: the first drain fails, the next ones report `removed` sessions."""

    def __init__(self, removed: int) -> None:
        self.calls = 0
        self.removed = removed

    async def drain_expired_sessions(self, batch_size: int) -> int:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionRefusedError("connection refused\nsecond line")
        return self.removed


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_failing_run_is_logged_in_one_line_and_retried_at_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.housekeeping")
    sessions = _FlakySessions(removed=4)
    settings = Settings(session_clean_interval=0.05, session_clean_batch_size=7)

    async with scheduled_session_clean(sessions, settings) as task:  # type: ignore[arg-type]
        assert task is not None
        await _until(lambda: sessions.calls >= 3)

    assert task.done()
    records = [record for record in caplog.records if record.name == "server.housekeeping"]
    failure = records[0]
    assert failure.levelno == logging.WARNING and failure.exc_info is None
    assert failure.getMessage().endswith("ConnectionRefusedError: connection refused")
    assert "\n" not in failure.getMessage()
    assert [record.getMessage() for record in records[1:3]] == [
        "scheduled session clean-up removed 4 expired or idle sessions"
    ] * 2
    assert all(record.levelno == logging.INFO for record in records[1:])


async def test_runs_that_remove_nothing_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="server.housekeeping")
    sessions = _FlakySessions(removed=0)
    sessions.calls = 1  # past the failing first call
    async with scheduled_session_clean(sessions, Settings(session_clean_interval=0.02)):  # type: ignore[arg-type]
        await _until(lambda: sessions.calls >= 4)
    assert [record for record in caplog.records if record.name == "server.housekeeping"] == []


async def test_no_interval_starts_no_task() -> None:
    async with scheduled_session_clean(_FlakySessions(0), Settings(session_clean_interval=None)) as task:  # type: ignore[arg-type]
        assert task is None


def _clean_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "session-clean" and not task.done()]


async def test_the_lifespan_cleans_on_schedule_and_stops_at_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.housekeeping")
    settings = Settings(
        database_url=f"sqlite://{tmp_path / 'sessions.sqlite3'}", session_clean_interval=0.2, session_clean_batch_size=2
    )
    async with LifespanManager(create_app(settings)):
        # given five expired sessions and a live one, stored while the server runs
        now = datetime.now(UTC)
        await _sessions(5, now, expires=-DAY, idle=timedelta(0))
        live = await _sessions(1, now, expires=DAY, idle=timedelta(0))
        assert len(_clean_tasks()) == 1

        # then the scheduler removes the expired ones (batches of two until a short one) and says so
        async def drained() -> bool:
            return await _stored_hashes() == live

        deadline = time.monotonic() + 5
        while not await drained():
            assert time.monotonic() < deadline, "the scheduled clean-up did not run"
            await asyncio.sleep(0.05)
        await _until(lambda: any("removed 5" in record.getMessage() for record in caplog.records))

    # and at shutdown the task is cancelled and gone
    assert _clean_tasks() == []


async def test_the_lifespan_starts_no_scheduler_without_an_interval(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite://{tmp_path / 'sessions.sqlite3'}", session_clean_interval=None)
    async with LifespanManager(create_app(settings)):
        assert _clean_tasks() == []
