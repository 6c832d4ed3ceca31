"""Concurrency on PostgreSQL + Redis, through the real app (lifespan, pool, cache): many logins of one
user, many new guest sessions, and racing setActiveOrder/unsetActiveOrder calls on one session.

Each burst is one `asyncio.gather` of GraphQL requests on one app; every phase is bounded in time.
The login rate limiter is off and the per-user session cap raised to 200 (they would rightly refuse or
end 200 logins of one identifier), tokens travel as bearer only (no shared cookie jar), and Argon2 runs
at the tests' minimal costs.

In one process the event loop happens to order each update's cache write right after its database
read, so the last two tests force the interleaving that racing instances produce: an update whose
cache write lands late, after a later update (or a logout) has already written database and cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from models import OrderLine, Session, SessionType, User
from server.cache import DefaultSessionCacheStrategy, Fence, build_cache_strategy
from server.cached_session import CachedSession
from server.services import Services
from server.services.tokens import token_digest
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult
from tests.services.support import make_order

pytestmark = pytest.mark.backends("postgres")

T = TypeVar("T")
#: Seconds any one burst (and its checks) may take, on a loaded machine.
PHASE_TIMEOUT = 120.0
LOGINS = 200
ANONYMOUS_SESSIONS = 500
ORDER_UPDATES = 100
ORDER_ROUNDS = 3
IDENTIFIER, PASSWORD = "alice@example.com", "pw-alice-123"

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename
    ... on CachedSession { id token user { id identifier } }
    ... on ErrorResult { errorCode message }
  }
}"""
CREATE_USER = "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }"
CREATE_ANONYMOUS_SESSION = "mutation { createAnonymousSession { id token user { id } } }"
SESSION_FROM_TOKEN = "query($token: String!) { sessionFromToken(token: $token) { id activeOrderId user { id } } }"
ADD_ITEM = "mutation($v: ID!) { addItemToOrder(productVariantId: $v, quantity: 1) { id } }"
SET_ACTIVE_ORDER = "mutation($id: ID!) { setActiveOrder(orderId: $id) { id activeOrderId } }"
UNSET_ACTIVE_ORDER = "mutation { unsetActiveOrder { id activeOrderId } }"
ACTIVE_ORDER = "{ activeOrder { id } }"


def order_id(value: int | None) -> str | None:
    """An order id as the API spells it."""
    return None if value is None else str(value)


async def bounded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(PHASE_TIMEOUT):
        return await awaitable


async def burst(calls: list[Callable[[], Awaitable[GraphQLResult]]]) -> list[GraphQLResult]:
    """Run every call at once; each must answer HTTP 200 without GraphQL errors."""
    results = await bounded(asyncio.gather(*(call() for call in calls)))
    failures = [(r.response.status_code, r.errors) for r in results if r.response.status_code != 200 or r.errors]
    assert failures == [], f"{len(failures)} of {len(results)} calls failed, e.g. {failures[:3]}"
    return results


@pytest.fixture
def app_settings(make_settings: SettingsFactory) -> Settings:
    settings = make_settings(login_rate_limit=None, token_methods=("bearer",), session_limit_per_user=LOGINS)
    assert settings.database_url.startswith("postgres") and settings.session_cache.startswith("redis://")
    return settings


@pytest.fixture
async def app(make_client: Callable[[Settings], Awaitable[GraphQLClient]], app_settings: Settings) -> GraphQLClient:
    return await make_client(app_settings)


async def resolve_all(app: GraphQLClient, tokens: list[str]) -> list[dict[str, Any] | None]:
    results = await burst(
        [lambda token=token: app.execute(SESSION_FROM_TOKEN, {"token": token}) for token in tokens]  # type: ignore[misc]
    )
    return [result.data["sessionFromToken"] if result.data else None for result in results]


async def test_concurrent_logins_of_one_user_each_get_their_own_working_session(app: GraphQLClient) -> None:
    # given a customer, logged in as superadmin to create her
    admin = await app.ok(LOGIN, {"username": "superadmin", "password": "superadmin"})
    user_input = {"identifier": IDENTIFIER, "password": PASSWORD, "verified": True}
    await app.ok(CREATE_USER, {"input": user_input}, token=admin["login"]["token"])
    user = await User.get(identifier=IDENTIFIER)

    # when she logs in LOGINS times at once
    results = await burst(
        [lambda: app.execute(LOGIN, {"username": IDENTIFIER, "password": PASSWORD}) for _ in range(LOGINS)]
    )

    # then every login made a session of its own, and every token resolves to it
    logins = [result.data["login"] for result in results if result.data]
    assert [login["__typename"] for login in logins] == ["CachedSession"] * LOGINS
    tokens = [login["token"] for login in logins]
    assert len(set(tokens)) == LOGINS
    assert len({login["id"] for login in logins}) == LOGINS
    assert await Session.filter(user_id=user.id).count() == LOGINS
    resolved = await resolve_all(app, tokens)
    assert [session and session["id"] for session in resolved] == [login["id"] for login in logins]
    assert {session and session["user"]["id"] for session in resolved} == {str(user.id)}


async def test_concurrent_anonymous_sessions_are_all_distinct_and_stored(app: GraphQLClient) -> None:
    results = await burst([lambda: app.execute(CREATE_ANONYMOUS_SESSION) for _ in range(ANONYMOUS_SESSIONS)])

    sessions = [result.data["createAnonymousSession"] for result in results if result.data]
    tokens = [session["token"] for session in sessions]
    assert len(set(tokens)) == ANONYMOUS_SESSIONS
    assert len({session["id"] for session in sessions}) == ANONYMOUS_SESSIONS
    assert await Session.all().count() == ANONYMOUS_SESSIONS
    assert await Session.filter(type=SessionType.ANONYMOUS).count() == ANONYMOUS_SESSIONS
    assert len(set(await Session.all().values_list("token_hash", flat=True))) == ANONYMOUS_SESSIONS
    resolved = await resolve_all(app, tokens)
    assert [session and session["id"] for session in resolved] == [session["id"] for session in sessions]


async def test_racing_set_and_unset_active_order_leave_database_cache_and_lookup_agreeing(
    app: GraphQLClient, app_settings: Settings
) -> None:
    # given a guest session holding two orders it created: A (left inactive for the session) and B
    guest = (await app.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    token = guest["token"]
    order_a = (await app.ok(ADD_ITEM, {"v": "a"}, token=token))["addItemToOrder"]["id"]
    await app.ok(UNSET_ACTIVE_ORDER, token=token)
    order_b = (await app.ok(ADD_ITEM, {"v": "b"}, token=token))["addItemToOrder"]["id"]
    assert order_a != order_b
    # this test's own view of the app's cache namespace, patient enough for a loaded machine
    cache = build_cache_strategy(
        replace(app_settings, session_cache_timeout_ms=5000), app_settings.session_cache_namespace
    )
    try:
        for _ in range(ORDER_ROUNDS):
            # when set(A), set(B) and unset race on that one session
            calls: list[Callable[[], Awaitable[GraphQLResult]]] = []
            for n in range(ORDER_UPDATES):
                if n % 3 == 2:
                    calls.append(lambda: app.execute(UNSET_ACTIVE_ORDER, token=token))
                else:
                    order = order_a if n % 3 == 0 else order_b
                    calls.append(lambda order=order: app.execute(SET_ACTIVE_ORDER, {"id": order}, token=token))  # type: ignore[misc]
            answers = [next(iter(result.data.values())) for result in await burst(calls) if result.data]
            assert {answer["id"] for answer in answers} == {guest["id"]}

            # then, once all have answered, the database holds the value of the write that committed
            # last (which that write's own answer, read after it, reports), and the cache and every
            # read agree with it
            stored = await Session.get(id=int(guest["id"]))
            in_database = order_id(stored.active_order_id)  # type: ignore[attr-defined]
            assert in_database in {answer["activeOrderId"] for answer in answers}
            # (the cache may hold no copy: a racing update dropped it, or a cache call timed out)
            cached = await bounded(cache.get(token_digest(token)))
            assert cached is None or order_id(cached.active_order_id) == in_database
            looked_up = await app.ok(SESSION_FROM_TOKEN, {"token": token})
            assert looked_up["sessionFromToken"]["activeOrderId"] == in_database
            active = await app.ok(ACTIVE_ORDER, token=token)
            assert (active["activeOrder"] or {}).get("id") == in_database
            recached = await bounded(cache.get(token_digest(token)))
            assert recached is None or order_id(recached.active_order_id) == in_database
    finally:
        await cache.close()


async def test_a_late_cache_write_of_an_earlier_update_cannot_outlive_a_later_update(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What racing instances can do to one session: the first update's cache write is delayed (another
    process, a pause, a slow network) until the second update has written the database and the cache.
    The earlier value must not stay cached over the later one."""
    sessions = services.sessions
    session = await sessions.create_anonymous_session()
    first = await make_order("FIRST", created_by_session_id=session.id)
    second = await make_order("SECOND", created_by_session_id=session.id)
    second_cached = asyncio.Event()
    store_set = DefaultSessionCacheStrategy.set

    async def delayed_set(
        self: DefaultSessionCacheStrategy, key: str, cached: CachedSession, fence: Fence | None = None
    ) -> None:
        if cached.active_order_id == first.id:
            await second_cached.wait()
        await store_set(self, key, cached, fence)
        if cached.active_order_id == second.id:
            second_cached.set()

    monkeypatch.setattr(DefaultSessionCacheStrategy, "set", delayed_set)

    async def second_update() -> CachedSession:
        await asyncio.sleep(0.05)  # after the first update's database write
        return await sessions.set_active_order(session, second)

    await bounded(asyncio.gather(sessions.set_active_order(session, first), second_update()))

    stored = await Session.get(id=session.id)
    assert stored.active_order_id == second.id  # type: ignore[attr-defined]
    found = await sessions.get_session_from_token(session.token)
    assert found is not None and found.active_order_id == second.id


async def test_a_late_cache_write_of_an_update_cannot_revive_a_session_ended_meanwhile(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update racing a logout: its cache write lands after the logout deleted row and cache entry."""
    sessions = services.sessions
    session = await sessions.create_anonymous_session()
    order = await make_order("CART", created_by_session_id=session.id)
    logged_out = asyncio.Event()
    store_set = DefaultSessionCacheStrategy.set

    async def delayed_set(
        self: DefaultSessionCacheStrategy, key: str, cached: CachedSession, fence: Fence | None = None
    ) -> None:
        if cached.active_order_id == order.id:
            await logged_out.wait()
        await store_set(self, key, cached, fence)

    monkeypatch.setattr(DefaultSessionCacheStrategy, "set", delayed_set)

    async def logout() -> bool:
        await asyncio.sleep(0.05)  # after the update's database write
        try:
            return await sessions.delete_session(session)
        finally:
            logged_out.set()

    _, deleted = await bounded(asyncio.gather(sessions.set_active_order(session, order), logout()))

    assert deleted is True
    assert await Session.filter(id=session.id).exists() is False
    assert await sessions.get_session_from_token(session.token) is None


async def test_two_sessions_adding_one_variant_to_one_order_at_once_make_one_line(
    app: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two guest sessions holding the same cart (as deleteSessionsByActiveOrderId allows for)
    first = (await app.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    second = (await app.ok(CREATE_ANONYMOUS_SESSION))["createAnonymousSession"]
    cart = int((await app.ok(ADD_ITEM, {"v": "a"}, token=first["token"]))["addItemToOrder"]["id"])
    await Session.filter(id=int(second["id"])).update(active_order_id=cart)
    # and the first add of variant "b" held just before it inserts the line it found missing
    at_insert, release = asyncio.Event(), asyncio.Event()
    create_line = OrderLine.create

    async def held_create(**kwargs: Any) -> OrderLine:
        if not at_insert.is_set():
            at_insert.set()
            await release.wait()
        return await create_line(**kwargs)

    monkeypatch.setattr(OrderLine, "create", held_create)
    held = asyncio.create_task(app.execute(ADD_ITEM, {"v": "b"}, token=first["token"]))
    await bounded(at_insert.wait())

    # when the other session adds the same variant to that cart meanwhile
    racing = asyncio.create_task(app.execute(ADD_ITEM, {"v": "b"}, token=second["token"]))
    # then it waits for the held add (the cart's row is locked) instead of inserting the line too
    await asyncio.sleep(0.5)
    assert not racing.done()
    release.set()
    results = await bounded(asyncio.gather(held, racing))
    assert [result.errors for result in results] == [None, None]
    assert {result.data["addItemToOrder"]["id"] for result in results if result.data} == {str(cart)}
    lines = await OrderLine.filter(order_id=cart, product_variant_id="b")
    assert [line.quantity for line in lines] == [2]
