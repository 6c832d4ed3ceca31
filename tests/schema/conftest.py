"""Fixtures for the API tests: a client that keeps no cookies, and several clients on one app."""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import Settings
from tests.conftest import Backend
from tests.graphql import GraphQLClient

ClientsFactory = Callable[[Settings], Awaitable[Callable[[], GraphQLClient]]]


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal costs: the same code path, milliseconds instead of ~0.5 s per hash or verify."""
    monkeypatch.setattr(
        "server.services.passwords._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest_asyncio.fixture
async def api(client: GraphQLClient) -> GraphQLClient:
    """The default app through a client that refuses every cookie: tokens travel only as bearer."""
    client.http.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


@pytest_asyncio.fixture
async def open_app(backend: Backend) -> AsyncIterator[ClientsFactory]:
    """Start one app for the settings; returns a factory of independent clients (own cookies) on it.

    It depends on `backend` so that the apps are shut down before the backend is cleaned.
    """
    managers: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(settings: Settings) -> Callable[[], GraphQLClient]:
        manager = LifespanManager(create_app(settings))
        await manager.__aenter__()
        managers.append(manager)

        def new_client() -> GraphQLClient:
            transport = httpx.ASGITransport(app=manager.app)
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            clients.append(client)
            return GraphQLClient(client)

        return new_client

    yield factory
    for client in reversed(clients):
        await client.aclose()
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)
