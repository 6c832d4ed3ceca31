"""GET /health through the real app: 200 while the database answers, 503 once it does not."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from tortoise import Tortoise

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


async def test_health_answers_ok_while_the_database_is_reachable(client: GraphQLClient) -> None:
    response = await client.http.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "ok"


async def test_health_accepts_only_get(client: GraphQLClient) -> None:
    response = await client.http.post("/health")
    assert response.status_code == 405


async def test_health_answers_503_once_the_connections_are_gone(client: GraphQLClient) -> None:
    assert (await client.http.get("/health")).status_code == 200
    # What the service sees when its database goes away under it: no usable connection.
    await Tortoise.close_connections()
    response = await client.http.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"


async def _drop_database(url: str) -> None:
    admin = await asyncpg.connect(TEST_DATABASE_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await admin.execute(f'DROP DATABASE "{urlsplit(url).path.strip("/")}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.backends("postgres")  # it drops a PostgreSQL database of its own: one run is enough
async def test_health_answers_503_when_the_postgres_database_is_dropped(
    make_client: Callable[[Settings], Any], make_settings: SettingsFactory, postgres_url: str
) -> None:
    client: GraphQLClient = await make_client(make_settings(database_url=postgres_url))
    assert (await client.http.get("/health")).status_code == 200

    await _drop_database(postgres_url)

    response = await client.http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
