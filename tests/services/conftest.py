"""Fixtures for the service tests: a fake clock, a recording cache, the SQL log and a service kit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from server.cache import DefaultSessionCacheStrategy, GuardedSessionCache, build_cache_strategy
from server.services import AuthService, ChannelService, OrderService, RoleService, SessionService, UserService
from server.settings import Settings
from tests.conftest import Backend
from tests.services.support import FakeClock, Kit, KitFactory, QueryLog, RecordingCache


@pytest.fixture
def queries() -> Iterator[QueryLog]:
    """Records the SQL run while the test runs; call `queries.clear()` before the step under test."""
    logger = logging.getLogger("tortoise.db_client")
    handler = QueryLog()
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.DEBUG)
    logger.disabled = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def cache(backend: Backend) -> AsyncIterator[RecordingCache]:
    """A recording cache on the backend's cache: a dict, or the default strategy on the test's Redis namespace."""
    if not backend.is_postgres:
        yield RecordingCache()
        return
    # A generous timeout: these tests are about the service's logic, not about a slow cache.
    settings = Settings(session_cache=backend.session_cache, session_cache_timeout_ms=2000)
    store = build_cache_strategy(settings, namespace=backend.namespace)
    assert isinstance(store, DefaultSessionCacheStrategy)
    recording = RecordingCache(store, backend.session_cache)
    try:
        yield recording
    finally:
        await recording.close_store()


@pytest.fixture
def make_kit(db: TortoiseContext, clock: FakeClock, cache: RecordingCache) -> KitFactory:
    """Builds a Kit for settings overrides, e.g. `make_kit(session_duration=100)`; all share clock and cache."""

    def factory(**overrides: Any) -> Kit:
        settings = Settings(**overrides)
        sessions = SessionService(GuardedSessionCache(cache, clock), settings, clock)
        return Kit(
            clock=clock,
            cache=cache,
            settings=settings,
            sessions=sessions,
            orders=OrderService(sessions),
            channels=ChannelService(sessions),
            roles=RoleService(sessions),
            users=UserService(),
            auth=AuthService(sessions, settings.require_verification),
        )

    return factory


@pytest.fixture
def kit(make_kit: KitFactory) -> Kit:
    return make_kit()
