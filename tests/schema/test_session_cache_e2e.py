"""Vendure's session cache e2e cases, through the app with a counting in-memory cache strategy."""

from __future__ import annotations

import asyncio
import http.cookiejar
from collections.abc import Awaitable, Callable, Sequence

import pytest

from server.cache import Fence
from server.cache.memory import InMemorySessionCacheStrategy
from server.cached_session import CachedSession
from server.services.tokens import token_digest
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient
from tests.schema.helpers import SUPERADMIN

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { ... on CachedSession { token } }
}
"""
ACTIVE_SESSION = "query Active { activeSession { id } }"
SESSION_FROM_TOKEN = "query FromToken($token: String!) { sessionFromToken(token: $token) { id } }"
SERIALIZE_SESSION = "query Serialize($token: String!) { serializeSession(token: $token) { id } }"
LOGOUT = "mutation Logout { logout { success } }"
ANONYMOUS = "mutation Anonymous { createAnonymousSession { id token } }"


class CountingCache(InMemorySessionCacheStrategy):
    """The in-memory strategy, recording the keys of every set, get and delete."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.sets: list[str] = []
        self.gets: list[str] = []
        self.deletes: list[str] = []

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        self.sets.append(key)
        await super().set(key, session, fence)

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        self.gets.append(key)
        return await super().lookup(key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.deletes.extend(keys)
        await super().delete_many(keys)


Start = Callable[..., Awaitable[tuple[GraphQLClient, CountingCache]]]


@pytest.fixture
def start(make_settings: SettingsFactory, make_client, monkeypatch: pytest.MonkeyPatch) -> Start:  # type: ignore[no-untyped-def]
    """Start the app with a CountingCache in place of the strategy SESSION_CACHE names."""

    async def factory(**overrides: object) -> tuple[GraphQLClient, CountingCache]:
        settings = make_settings(**overrides)
        cache = CountingCache(settings.session_cache_size)

        def build(settings: Settings, namespace: str = "sessions", *, redis: object = None) -> CountingCache:
            return cache

        monkeypatch.setattr("server.cache.build_cache_strategy", build)
        client: GraphQLClient = await make_client(settings)
        client.http.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # bearer only
        return client, cache

    return factory


async def login(client: GraphQLClient) -> str:
    data = await client.ok(LOGIN, dict(zip(("username", "password"), SUPERADMIN, strict=True)))
    token: str = data["login"]["token"]
    return token


async def test_login_populates_the_cache_once(start: Start) -> None:
    client, cache = await start()
    token = await login(client)
    assert (cache.sets, len(cache)) == ([token_digest(token)], 1)


async def test_next_request_reads_the_cache_without_a_set(start: Start) -> None:
    client, cache = await start()
    token = await login(client)
    assert await client.ok(ACTIVE_SESSION, token=token) == {"activeSession": {"id": "1"}}
    assert await client.ok(SESSION_FROM_TOKEN, {"token": token}) == {"sessionFromToken": {"id": "1"}}
    # Three lookups: the login's, taken as a fence before it reads the new session back, and one per request.
    assert (cache.gets, cache.sets) == ([token_digest(token)] * 3, [token_digest(token)])


async def test_the_cache_is_set_again_after_its_ttl(start: Start) -> None:
    client, cache = await start(session_cache_ttl=1.0)
    token = await login(client)
    await client.ok(ACTIVE_SESSION, token=token)
    assert len(cache.sets) == 1
    await asyncio.sleep(1.1)
    assert await client.ok(ACTIVE_SESSION, token=token) == {"activeSession": {"id": "1"}}
    assert cache.sets == [token_digest(token)] * 2


async def test_logout_deletes_the_cache_entry(start: Start) -> None:
    client, cache = await start()
    token = await login(client)
    assert await client.ok(LOGOUT, token=token) == {"logout": {"success": True}}
    assert (cache.deletes, len(cache)) == ([token_digest(token)], 0)
    assert await client.ok(SESSION_FROM_TOKEN, {"token": token}) == {"sessionFromToken": None}


async def test_delete_sessions_by_user_deletes_their_cache_entries(start: Start) -> None:
    client, cache = await start()
    tokens = [await login(client), await login(client)]
    data = await client.ok("mutation Delete { deleteSessionsByUser(userId: 1) }", token=tokens[0])
    assert data == {"deleteSessionsByUser": 2}
    assert (sorted(cache.deletes), len(cache)) == (sorted(map(token_digest, tokens)), 0)


async def test_serialize_session_leaves_the_cache_untouched(start: Start) -> None:
    client, cache = await start()
    guest = (await client.ok(ANONYMOUS))["createAnonymousSession"]
    admin = await login(client)
    sets, deletes, gets = list(cache.sets), list(cache.deletes), list(cache.gets)
    data = await client.ok(SERIALIZE_SESSION, {"token": guest["token"]}, token=admin)
    assert data == {"serializeSession": {"id": guest["id"]}}
    assert (cache.sets, cache.deletes, cache.gets) == (sets, deletes, [*gets, token_digest(admin)])


async def test_a_session_in_use_outlives_its_duration(start: Start) -> None:
    client, _ = await start(session_duration=3.0, session_cache_ttl=1.0)
    session = (await client.ok(ANONYMOUS))["createAnonymousSession"]
    seen = []
    for _ in range(5):
        await asyncio.sleep(1.0)
        seen.append(await client.ok(SESSION_FROM_TOKEN, {"token": session["token"]}))
    assert seen == [{"sessionFromToken": {"id": session["id"]}}] * 5


async def test_an_idle_session_expires(start: Start) -> None:
    client, _ = await start(session_duration=3.0, session_cache_ttl=1.0)
    token = (await client.ok(ANONYMOUS))["createAnonymousSession"]["token"]
    await asyncio.sleep(3.5)
    assert await client.ok(SESSION_FROM_TOKEN, {"token": token}) == {"sessionFromToken": None}
    assert await client.ok(ACTIVE_SESSION, token=token) == {"activeSession": None}
