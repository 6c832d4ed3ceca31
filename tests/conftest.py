"""Shared fixtures: settings, an isolated database per test, the real app with its lifespan."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from tortoise.context import TortoiseContext, tortoise_test_context

from server.app import create_app
from server.bootstrap import bootstrap
from server.cache.memory import InMemorySessionCacheStrategy
from server.services import Services
from server.settings import Settings
from tests.graphql import GraphQLClient

SettingsFactory = Callable[..., Settings]


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal costs in-process: the same code path, milliseconds instead of ~0.5 s a hash.

    Servers started as subprocesses (end-to-end tests) keep the production costs.
    """
    monkeypatch.setattr(
        "server.services.passwords._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a test: its own SQLite file and the in-process cache."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": f"sqlite://{tmp_path / 'sessions.sqlite3'}"}
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest_asyncio.fixture
async def db() -> AsyncIterator[TortoiseContext]:
    """A fresh in-memory SQLite database with the schema, bootstrapped (default channel, superadmin)."""
    async with tortoise_test_context(["models"]) as context:
        await bootstrap(Settings())
        yield context


@pytest.fixture
def services(db: TortoiseContext, settings: Settings) -> Services:
    return Services.build(InMemorySessionCacheStrategy(settings.session_cache_size), settings)


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start the real app (lifespan included) for given settings; returns a GraphQLClient."""
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
async def client(make_client: Callable[[Settings], Any], settings: Settings) -> GraphQLClient:
    """The app on the default settings (cookie and bearer), with a cookie-keeping HTTP client."""
    result: GraphQLClient = await make_client(settings)
    return result


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"
