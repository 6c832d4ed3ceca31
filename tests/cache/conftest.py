"""Fixtures for the session cache strategies: sessions, a Redis connection and strategy factories."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
import redis
import redis.asyncio
from aiocache import SimpleMemoryCache
from aiocache.serializers import StringSerializer

from models.enums import Permission
from server.cache import (
    DefaultSessionCacheStrategy,
    InMemorySessionCacheStrategy,
    NoopSessionCacheStrategy,
    SessionCacheStrategy,
    build_cache_strategy,
)
from server.cached_session import CachedSession, CachedSessionUser, UserChannelPermissions
from server.settings import Settings


class SessionFactory(Protocol):
    def __call__(
        self, *, id: int = 1, token: str = ..., cache_ttl: float = ..., with_user: bool = ...
    ) -> CachedSession: ...


StrategyFactory = Callable[..., SessionCacheStrategy]


@dataclass(frozen=True)
class StrategyCase:
    """One strategy under the contract suite; `stores` is False for the strategy that caches nothing."""

    name: str
    stores: bool
    namespaced: bool


CASES = (
    StrategyCase("memory", stores=True, namespaced=False),
    StrategyCase("noop", stores=False, namespaced=False),
    StrategyCase("default-simplememory", stores=True, namespaced=True),
    StrategyCase("default-redis", stores=True, namespaced=True),
)


def _make_session(
    *, id: int = 1, token: str = "raw-token-0123456789abcdef", cache_ttl: float = 300.0, with_user: bool = False
) -> CachedSession:
    user = None
    if with_user:
        user = CachedSessionUser(
            id=7,
            identifier="alice@example.com",
            verified=True,
            channel_permissions=(
                UserChannelPermissions(
                    id=1,
                    token="default-channel",
                    code="__default_channel__",
                    permissions=(Permission.Authenticated, Permission.ReadOrder, Permission.UpdateOrder),
                ),
                UserChannelPermissions(id=2, token="eu-channel", code="eu", permissions=(Permission.SuperAdmin,)),
            ),
        )
    return CachedSession(
        cache_expiry=time.time() + cache_ttl,
        id=id,
        token=token,
        expires=datetime(2031, 5, 17, 8, 30, 15, 123456, tzinfo=UTC) + timedelta(seconds=id),
        active_order_id=42 if with_user else None,
        authentication_strategy="native" if with_user else None,
        user=user,
        active_channel_id=1,
    )


@pytest.fixture
def make_session() -> SessionFactory:
    return _make_session


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_strategies(
    redis_url: str, raw_redis: redis.asyncio.Redis, namespace: str
) -> AsyncIterator[Callable[..., DefaultSessionCacheStrategy]]:
    """Builds Redis strategies (default namespace: the test's); closes them and deletes their keys."""
    strategies: list[DefaultSessionCacheStrategy] = []

    def build(namespace: str = namespace, timeout_ms: int = 1000) -> DefaultSessionCacheStrategy:
        settings = Settings(session_cache=redis_url, session_cache_timeout_ms=timeout_ms)
        strategy = build_cache_strategy(settings, namespace)
        assert isinstance(strategy, DefaultSessionCacheStrategy)
        strategies.append(strategy)
        return strategy

    try:
        yield build
    finally:
        for strategy in strategies:
            await strategy.close()
        for ns in {strategy.namespace for strategy in strategies}:
            keys = [key async for key in raw_redis.scan_iter(match=f"{ns}:*", count=500)]
            if keys:
                await raw_redis.delete(*keys)


@pytest.fixture
async def simple_memory_strategies(namespace: str) -> AsyncIterator[Callable[..., DefaultSessionCacheStrategy]]:
    """Builds default strategies sharing one SimpleMemoryCache, as instances share one Redis."""
    cache = SimpleMemoryCache(serializer=StringSerializer(), timeout=None)

    def build(namespace: str = namespace) -> DefaultSessionCacheStrategy:
        return DefaultSessionCacheStrategy(cache, namespace)

    try:
        yield build
    finally:
        await cache.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "strategy_cases(**flags): run only the StrategyCase entries whose flags match, e.g. stores=True"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `case` over every strategy, narrowed by a `strategy_cases` marker."""
    if "case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("strategy_cases")
    flags = marker.kwargs if marker else {}
    cases = [case for case in CASES if all(getattr(case, flag) == value for flag, value in flags.items())]
    metafunc.parametrize("case", cases, ids=[case.name for case in cases])


@pytest.fixture
def make_strategy(case: StrategyCase, request: pytest.FixtureRequest) -> StrategyFactory:
    """Builds strategies of `case`; Redis is only required by the default-redis case."""
    if case.name == "memory":
        return lambda **_: InMemorySessionCacheStrategy(100)
    if case.name == "noop":
        return lambda **_: NoopSessionCacheStrategy()
    fixture = "redis_strategies" if case.name == "default-redis" else "simple_memory_strategies"
    factory: Callable[..., Any] = request.getfixturevalue(fixture)
    return factory


@pytest.fixture
def strategy(make_strategy: StrategyFactory) -> SessionCacheStrategy:
    return make_strategy()
