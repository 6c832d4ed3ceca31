"""Fixtures for the service tests: a fake clock, a recording cache, the SQL log and a service kit."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from tortoise.context import TortoiseContext

from server.services import AuthService, ChannelService, OrderService, RoleService, SessionService, UserService
from server.settings import Settings
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


@pytest.fixture
def cache() -> RecordingCache:
    return RecordingCache()


@pytest.fixture
def make_kit(db: TortoiseContext, clock: FakeClock, cache: RecordingCache) -> KitFactory:
    """Builds a Kit for settings overrides, e.g. `make_kit(session_duration=100)`; all share clock and cache."""

    def factory(**overrides: Any) -> Kit:
        settings = Settings(**overrides)
        sessions = SessionService(cache, settings, clock)
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
