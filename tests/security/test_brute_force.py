"""Brute force: login attempts limited per identifier and per client address (LOGIN_RATE_LIMIT).

Every attack goes through the real app (lifespan included) with httpx clients whose ASGI scope
names the client address the attacker sends from. Argon2's `verify` is wrapped to count calls, so
each test proves that a limited attempt runs no password check at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import redis
import redis.asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.cache.login_limiters import LocalLoginLimiter
from server.services.login_limiter import limit_keys
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.live_server import live_server
from tests.schema.helpers import SUPERADMIN

ADMIN_ADDRESS = "10.0.0.1"
LIMIT = 3
WINDOW = 60.0

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename
    ... on CachedSession { token user { identifier } }
    ... on ErrorResult { errorCode }
  }
}
"""
CREATE_USER = "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }"
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { success }
}
"""


class CountingHasher(PasswordHasher):
    """Argon2 at the tests' minimal costs, counting every password verification."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(cheap_password_hashing: None, monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr("server.services.passwords._hasher", counting)
    # unknown users are checked against this hash: at production costs each check would take ~1 s
    monkeypatch.setattr("server.services.passwords._DUMMY_HASH", counting.hash("no such user"))
    return counting


ClientAt = Callable[[str], GraphQLClient]
StartApp = Callable[[Settings], Awaitable[ClientAt]]


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """Start an app (lifespan included) for the settings; returns `client_at(address)`: a cookie-less
    GraphQL client whose requests come from that client address."""
    managers: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def start(settings: Settings) -> ClientAt:
        manager = LifespanManager(create_app(settings))
        await manager.__aenter__()
        managers.append(manager)

        def client_at(address: str) -> GraphQLClient:
            transport = httpx.ASGITransport(app=manager.app, client=(address, 40000))
            http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            http.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            clients.append(http)
            return GraphQLClient(http)

        return client_at

    yield start
    for http in reversed(clients):
        await http.aclose()
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


async def attempt(client: GraphQLClient, username: str, password: str) -> GraphQLResult:
    return await client.execute(LOGIN, {"username": username, "password": password})


def outcome(result: GraphQLResult) -> str:
    """The login's __typename, or RATE_LIMITED (after checking the error's shape), or a failure."""
    if result.errors:
        assert len(result.errors) == 1, result.errors
        assert_rate_limited(result.errors[0])
        return "RATE_LIMITED"
    assert result.data is not None
    typename: str = result.data["login"]["__typename"]
    return typename


def assert_rate_limited(error: dict[str, Any], window: float = WINDOW) -> None:
    extensions = error.get("extensions", {})
    assert extensions.get("code") == "FORBIDDEN", error
    assert extensions.get("reason") == "RATE_LIMITED", error
    retry_after = extensions.get("retryAfter")
    assert isinstance(retry_after, int) and 1 <= retry_after <= window, error
    assert f"try again in {retry_after} seconds" in error["message"]


async def create_users(client: GraphQLClient, *identifiers: str) -> None:
    """Users with the password 'pw-<identifier>', created by the superadmin logged in from ADMIN_ADDRESS."""
    result = await attempt(client, *SUPERADMIN)
    assert result.data is not None
    admin = result.data["login"]["token"]
    for identifier in identifiers:
        user_input = {"identifier": identifier, "password": f"pw-{identifier}"}
        await client.ok(CREATE_USER, {"input": user_input}, token=admin)


def limited_settings(make_settings: SettingsFactory, **overrides: Any) -> Settings:
    return make_settings(login_rate_limit=(LIMIT, WINDOW), **overrides)


async def test_attempts_on_one_identifier_from_many_addresses_are_limited(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    client_at = await start_app(limited_settings(make_settings))
    await create_users(client_at(ADMIN_ADDRESS), "victim", "bystander")
    hasher.verifications = 0

    # the attacker guesses the victim's password, each guess from a new address
    guesses = [await attempt(client_at(f"198.51.100.{n}"), "victim", f"guess-{n}") for n in range(1, 7)]

    assert [outcome(result) for result in guesses] == ["InvalidCredentialsError"] * LIMIT + ["RATE_LIMITED"] * 3
    assert hasher.verifications == LIMIT
    # the right password is refused too while the identifier is limited, in any letter case, unchecked
    assert outcome(await attempt(client_at("198.51.100.50"), "victim", "pw-victim")) == "RATE_LIMITED"
    assert outcome(await attempt(client_at("198.51.100.51"), " VICTIM ", "pw-victim")) == "RATE_LIMITED"
    assert hasher.verifications == LIMIT
    # another identifier is not affected
    assert outcome(await attempt(client_at("198.51.100.52"), "bystander", "pw-bystander")) == "CachedSession"


@pytest.mark.parametrize("session_cache", ["memory", "noop"])
async def test_attempts_from_one_address_on_many_identifiers_are_limited(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher, session_cache: str
) -> None:
    client_at = await start_app(limited_settings(make_settings, session_cache=session_cache))
    await create_users(client_at(ADMIN_ADDRESS), "alice")
    attacker = client_at("203.0.113.7")
    hasher.verifications = 0

    # password spraying: one common password against many identifiers from one address
    sprayed = [await attempt(attacker, f"user{n}", "Summer2024!") for n in range(5)]

    assert [outcome(result) for result in sprayed] == ["InvalidCredentialsError"] * LIMIT + ["RATE_LIMITED"] * 2
    assert hasher.verifications == LIMIT
    # a real user's right password from that address is refused without a check; from elsewhere it works
    assert outcome(await attempt(attacker, "alice", "pw-alice")) == "RATE_LIMITED"
    assert hasher.verifications == LIMIT
    assert outcome(await attempt(client_at("203.0.113.8"), "alice", "pw-alice")) == "CachedSession"


@pytest.mark.parametrize("accept", [None, "application/graphql-response+json"])
async def test_a_limited_login_sets_retry_after(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher, accept: str | None
) -> None:
    client_at = await start_app(limited_settings(make_settings))
    attacker = client_at("192.0.2.9")
    headers = {"accept": accept} if accept else {}
    tried = [
        await attacker.execute(LOGIN, {"username": f"user{n}", "password": "guess"}, headers=headers)
        for n in range(LIMIT + 1)
    ]

    assert [outcome(result) for result in tried] == ["InvalidCredentialsError"] * LIMIT + ["RATE_LIMITED"]
    assert ["retry-after" in result.response.headers for result in tried[:LIMIT]] == [False] * LIMIT
    limited = tried[-1]
    assert limited.errors is not None
    # a field error (the operation ran): 200, with the seconds of `retryAfter` in the header as well
    assert (limited.response.status_code, limited.response.headers["retry-after"]) == (
        200,
        str(limited.errors[0]["extensions"]["retryAfter"]),
    )


async def test_ipv6_clients_are_counted_per_64_network(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    client_at = await start_app(limited_settings(make_settings))

    # one attacker rotating through the addresses of its /64
    rotated = [await attempt(client_at(f"2001:db8:1:2::{n:x}"), f"user{n}", "guess") for n in range(1, 6)]

    assert [outcome(result) for result in rotated] == ["InvalidCredentialsError"] * LIMIT + ["RATE_LIMITED"] * 2
    assert outcome(await attempt(client_at("2001:db8:1:3::1"), "user9", "guess")) == "InvalidCredentialsError"


async def test_aliases_in_one_document_cannot_multiply_attempts(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    client_at = await start_app(limited_settings(make_settings))
    attacker = client_at("192.0.2.10")
    fields = " ".join(f'g{n}: login(username: "victim", password: "guess-{n}") {{ __typename }}' for n in range(1, 6))

    result = await attacker.execute(f"mutation {{ {fields} }}")

    # each executed login field is one attempt: the first LIMIT were checked, the next was refused
    # unchecked, and (login being non-null) its error ended the document: g5 never ran
    assert hasher.verifications == LIMIT
    assert result.errors is not None and len(result.errors) == 1
    assert result.errors[0]["path"] == ["g4"]
    assert_rate_limited(result.errors[0])
    assert result.data is None
    # and the document's attempts were counted: the next single attempt is refused too
    assert outcome(await attempt(client_at("192.0.2.11"), "victim", "guess")) == "RATE_LIMITED"
    assert hasher.verifications == LIMIT


async def test_success_resets_the_identifier_but_not_the_address(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    limit = 4
    client_at = await start_app(make_settings(login_rate_limit=(limit, WINDOW)))
    await create_users(client_at(ADMIN_ADDRESS), "carol")
    home = client_at("192.0.2.20")

    # carol mistypes twice, then gets it right from home: her identifier's count starts again
    assert outcome(await attempt(client_at("192.0.2.21"), "carol", "typo-1")) == "InvalidCredentialsError"
    assert outcome(await attempt(client_at("192.0.2.22"), "carol", "typo-2")) == "InvalidCredentialsError"
    assert outcome(await attempt(home, "carol", "pw-carol")) == "CachedSession"
    after = [await attempt(client_at(f"192.0.2.{30 + n}"), "carol", f"typo-{n}") for n in range(limit + 1)]
    assert [outcome(r) for r in after] == ["InvalidCredentialsError"] * limit + ["RATE_LIMITED"]

    # her home address kept counting through the success: 1 + 3 attempts allowed, the 5th refused
    from_home = [await attempt(home, f"someone{n}", "x") for n in range(limit)]
    assert [outcome(r) for r in from_home] == ["InvalidCredentialsError"] * (limit - 1) + ["RATE_LIMITED"]


async def test_the_limit_lifts_when_the_window_ends(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    client_at = await start_app(make_settings(login_rate_limit=(1, 1.0)))
    await create_users(client_at(ADMIN_ADDRESS), "dave")
    client = client_at("192.0.2.40")

    assert outcome(await attempt(client, "dave", "wrong")) == "InvalidCredentialsError"
    limited = await attempt(client, "dave", "pw-dave")
    assert limited.errors is not None
    assert_rate_limited(limited.errors[0], window=1.0)
    await asyncio.sleep(limited.errors[0]["extensions"]["retryAfter"] + 0.05)

    assert outcome(await attempt(client, "dave", "pw-dave")) == "CachedSession"


async def test_change_password_cannot_be_used_to_guess_the_current_password(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    # an attacker holding a stolen session token guesses the password through changePassword
    client_at = await start_app(limited_settings(make_settings))
    await create_users(client_at(ADMIN_ADDRESS), "erin")
    attacker = client_at("192.0.2.50")
    result = await attempt(client_at("192.0.2.51"), "erin", "pw-erin")
    assert result.data is not None
    stolen = result.data["login"]["token"]
    hasher.verifications = 0

    results = [
        await attacker.execute(CHANGE_PASSWORD, {"current": f"guess-{n}", "new": "owned"}, token=stolen)
        for n in range(5)
    ]

    assert [r.data["changePassword"]["success"] for r in results[:LIMIT] if r.data] == [False] * LIMIT
    for limited in results[LIMIT:]:
        assert limited.errors is not None
        assert_rate_limited(limited.errors[0])
    assert hasher.verifications == LIMIT
    # the real password is refused unchecked while limited, and the password did not change
    refused = await attacker.execute(CHANGE_PASSWORD, {"current": "pw-erin", "new": "owned"}, token=stolen)
    assert refused.errors is not None
    assert_rate_limited(refused.errors[0])
    assert hasher.verifications == LIMIT
    # the guesses counted against erin's identifier: logins are refused for it as well now
    assert outcome(await attempt(client_at("192.0.2.52"), "erin", "pw-erin")) == "RATE_LIMITED"


async def test_the_limiter_can_be_switched_off(
    make_settings: SettingsFactory, start_app: StartApp, hasher: CountingHasher
) -> None:
    client_at = await start_app(make_settings(login_rate_limit=None))
    client = client_at("192.0.2.60")

    results = [await attempt(client, "victim", f"guess-{n}") for n in range(12)]

    assert {outcome(result) for result in results} == {"InvalidCredentialsError"}
    assert hasher.verifications == 12


async def test_local_limiter_stays_bounded_and_forgets_ended_windows() -> None:
    now = [0.0]
    limiter = LocalLoginLimiter(attempts=2, window=10.0, max_counters=4, clock=lambda: now[0])

    for n in range(10):  # an attacker spraying identifiers cannot grow the table past its bound
        await limiter.attempt(limit_keys(f"user{n}", None))
        assert len(limiter) <= 4
    assert await limiter.attempt(["k"]) is None
    assert await limiter.attempt(["k"]) is None
    assert await limiter.attempt(["k"]) == 10.0
    now[0] = 10.0  # the window ended: its counters are dropped
    assert await limiter.attempt(["k"]) is None
    assert len(limiter) == 1


# -- Redis: the limit is shared by every instance on the same cache namespace ----------------------


@pytest.fixture
async def redis_namespace(redis_url: str) -> AsyncIterator[str]:
    namespace = f"test-{uuid.uuid4().hex}"
    yield namespace
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def second_instance(
    tmp_path: Path, make_settings: SettingsFactory, redis_url: str, redis_namespace: str
) -> Iterator[str]:
    """`python -m server` in its own process on a free loopback port: the same database as the
    in-process app of the test (make_settings), the same Redis namespace, LOGIN_RATE_LIMIT 3/1m.
    It trusts X-Forwarded-For from loopback, as behind a reverse proxy, so a test can choose the
    client address it is seen from."""
    with live_server(
        tmp_path,
        "second-instance.log",
        DATABASE_URL=make_settings().database_url,
        # The same superadmin as the in-process app's, whichever of the two bootstraps first.
        SUPERADMIN_PASSWORD=make_settings().superadmin_password,
        SESSION_CACHE=redis_url,
        SESSION_CACHE_NAMESPACE=redis_namespace,
        LOGIN_RATE_LIMIT=f"{LIMIT}/{int(WINDOW)}s",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    ) as port:
        yield f"http://127.0.0.1:{port}"


async def test_two_instances_sharing_redis_share_the_limits(
    make_settings: SettingsFactory,
    start_app: StartApp,
    hasher: CountingHasher,
    redis_url: str,
    redis_namespace: str,
    second_instance: str,
) -> None:
    settings = limited_settings(make_settings, session_cache=redis_url, session_cache_namespace=redis_namespace)
    first = await start_app(settings)
    await create_users(first(ADMIN_ADDRESS), "frank")
    hasher.verifications = 0
    async with httpx.AsyncClient(base_url=second_instance, timeout=30) as http:
        second = GraphQLClient(http)

        async def on_second(username: str, password: str, address: str) -> GraphQLResult:
            return await second.execute(
                LOGIN, {"username": username, "password": password}, headers={"x-forwarded-for": address}
            )

        # per identifier: guesses on frank alternate between the instances, each from a new address
        by_identifier = [
            await attempt(first("198.51.100.1"), "frank", "guess-1"),
            await on_second("frank", "guess-2", "198.51.100.2"),
            await attempt(first("198.51.100.3"), "frank", "guess-3"),
            await on_second("frank", "guess-4", "198.51.100.4"),
            await attempt(first("198.51.100.5"), "frank", "pw-frank"),
        ]
        # per address: one address spraying identifiers over both instances
        by_address = [
            await on_second("user0", "guess", "203.0.113.9"),
            await attempt(first("203.0.113.9"), "user1", "guess"),
            await on_second("user2", "guess", "203.0.113.9"),
            await attempt(first("203.0.113.9"), "user3", "guess"),
            await on_second("user4", "guess", "203.0.113.9"),
        ]

    expected = ["InvalidCredentialsError"] * LIMIT + ["RATE_LIMITED"] * 2
    assert [outcome(result) for result in by_identifier] == expected
    assert [outcome(result) for result in by_address] == expected
    # this process checked passwords only for its allowed attempts (guess-1, guess-3, user1)
    assert hasher.verifications == 3

    # the counters are in Redis under the namespace, named by digests only, and expire with the window
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [key.decode() async for key in raw.scan_iter(match=f"{redis_namespace}:login:*")]
        ttls = [await raw.pttl(key) for key in keys]
    finally:
        await raw.aclose()
    wanted = {f"{redis_namespace}:login:{key}" for key in limit_keys("frank", "203.0.113.9")}
    assert wanted <= set(keys)
    assert not any("frank" in key or "203.0.113" in key for key in keys)
    assert all(0 < ttl <= WINDOW * 1000 for ttl in ttls)
