"""A login racing the guest's own cart, and requests racing the end of their session.

Locks are taken in one order everywhere (user, then sessions, then orders): a login merging a guest
cart and an addItemToOrder of that guest must never deadlock. An add that arrives after the guest
session was merged away is refused with FORBIDDEN / SESSION_ENDED (the client retries with its new
token) instead of starting a second cart whose cookie would replace the login's. A request whose
session ends while its context is built (a logout racing it) is a request without a session, never
an HTTP 500.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest

from models import Order, OrderLine, Session
from server.cached_session import CachedSession
from server.services import OrderService, Services
from server.services.errors import SessionEndedError
from server.services.request_context import RequestContext
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient

T = TypeVar("T")
PASSWORD = "pw-alice-123"
TRIALS = 30
ADDS_PER_TRIAL = 4
STEP_TIMEOUT = 30.0

ADD_ITEM = "mutation($v: ID!) { addItemToOrder(productVariantId: $v, quantity: 1) { id lines { productVariantId } } }"
ACTIVE_SESSION = "{ activeSession { id activeChannelId } }"
CREATE_CHANNEL = "mutation($code: String!) { createChannel(input: {code: $code}) { id token } }"
LOGIN = """mutation($u: String!, $p: String!) { login(username: $u, password: $p) {
  __typename ... on CachedSession { token activeOrderId } } }"""
LOGOUT = "mutation { logout { success } }"


async def bounded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(STEP_TIMEOUT):
        return await awaitable


async def ctx(services: Services, session: CachedSession | None) -> RequestContext:
    channel = await services.channels.get_default_channel()
    return RequestContext(channel_id=channel.id, session=session)


async def guest_with_cart(services: Services) -> CachedSession:
    guest = await services.sessions.create_anonymous_session()
    _, guest = await services.orders.add_item_to_order(guest, "guest-1", 1)
    return guest


async def lines_of_user(user_id: int) -> set[str]:
    order = await Order.get(user_id=user_id, active=True)
    return set(cast(list[str], await OrderLine.filter(order_id=order.id).values_list("product_variant_id", flat=True)))


@pytest.mark.backends("postgres")
async def test_an_add_holding_the_guest_session_lock_does_not_deadlock_a_login(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving that deadlocked: the add has locked the guest session, then the login starts."""
    user = await services.users.create("alice@example.com", PASSWORD)
    guest = await guest_with_cart(services)
    locked, release = asyncio.Event(), asyncio.Event()
    original = OrderService._active_order_for_update

    async def paused(self: OrderService, *args: Any) -> Order:
        locked.set()
        await release.wait()
        return await original(self, *args)

    monkeypatch.setattr(OrderService, "_active_order_for_update", paused)
    add = asyncio.create_task(services.orders.add_item_to_order(guest, "guest-2", 1))
    await bounded(locked.wait())
    login = asyncio.create_task(services.auth.login(await ctx(services, guest), user.identifier, PASSWORD))
    await asyncio.sleep(0.3)  # the login now waits for the guest session's lock
    release.set()

    await bounded(add)
    session = await bounded(login)
    assert isinstance(session, CachedSession)
    assert await lines_of_user(user.id) == {"guest-1", "guest-2"}


@pytest.mark.backends("postgres")
async def test_randomized_logins_racing_the_guests_adds_never_deadlock_and_lose_no_acknowledged_line(
    services: Services,
) -> None:
    rng = random.Random(3)
    user = await services.users.create("alice@example.com", PASSWORD)
    for trial in range(TRIALS):
        guest = await guest_with_cart(services)
        acknowledged = {"guest-1"}

        async def add(variant: str, delay: float) -> None:
            await asyncio.sleep(delay)
            try:
                await services.orders.add_item_to_order(guest, variant, 1)
            except SessionEndedError:
                return  # merged away first: the client retries with its new token
            acknowledged.add(variant)

        async def login(delay: float) -> object:
            await asyncio.sleep(delay)
            return await services.auth.login(await ctx(services, guest), user.identifier, PASSWORD)

        adds = [add(f"t{trial}-{n}", rng.uniform(0, 0.02)) for n in range(ADDS_PER_TRIAL)]
        results = await bounded(asyncio.gather(login(rng.uniform(0, 0.02)), *adds))
        assert isinstance(results[0], CachedSession)
        assert acknowledged <= await lines_of_user(user.id)


async def test_an_add_with_a_session_merged_away_is_refused_with_session_ended(services: Services) -> None:
    user = await services.users.create("alice@example.com", PASSWORD)
    guest = await guest_with_cart(services)
    assert isinstance(await services.auth.login(await ctx(services, guest), user.identifier, PASSWORD), CachedSession)

    with pytest.raises(SessionEndedError) as refused:
        await services.orders.add_item_to_order(guest, "late", 1)
    assert refused.value.extensions == {"code": "FORBIDDEN", "reason": "SESSION_ENDED"}
    assert await lines_of_user(user.id) == {"guest-1"}


@pytest.fixture
async def api(make_client: Callable[[Settings], Awaitable[GraphQLClient]], make_settings: SettingsFactory) -> Any:
    return await make_client(make_settings(login_rate_limit=None))


async def test_a_request_with_a_guest_token_merged_into_a_login_gets_session_ended_and_keeps_the_cookie(
    api: GraphQLClient,
) -> None:
    added = await api.execute(ADD_ITEM, {"v": "guest-1"})
    guest_token = added.response.cookies["session"]
    login = await api.ok(LOGIN, {"u": "superadmin", "p": "superadmin"})  # with the guest's cookie
    assert login["login"]["__typename"] == "CachedSession"

    # An add the browser sent with the guest's cookie before the login's answer replaced it.
    api.http.cookies.clear()
    late = await api.execute(ADD_ITEM, {"v": "late"}, headers={"cookie": f"session={guest_token}"})

    assert late.response.status_code == 200
    assert late.errors is not None and late.errors[0]["extensions"] == {"code": "FORBIDDEN", "reason": "SESSION_ENDED"}
    assert "set-cookie" not in late.response.headers  # the login's cookie is not replaced
    assert await Session.filter(type="anonymous", invalidated=False).count() == 0  # no second guest cart
    after = await api.ok("{ activeOrder { lines { productVariantId } } }", token=login["login"]["token"])
    assert after == {"activeOrder": {"lines": [{"productVariantId": "guest-1"}]}}


async def test_a_session_logged_out_while_its_context_switches_channel_is_no_session_not_a_500(
    api: GraphQLClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = (await api.ok(LOGIN, {"u": "superadmin", "p": "superadmin"}))["login"]["token"]
    channel = (await api.ok(CREATE_CHANNEL, {"code": "uk"}, token=admin))["createChannel"]
    api.http.cookies.clear()
    guest = (await api.execute(ADD_ITEM, {"v": "x"})).response.cookies["session"]
    api.http.cookies.clear()
    sessions_type = type(services.sessions)
    original = sessions_type.resolve_token

    async def resolved_then_logged_out(self: Any, token: str, client: Any = None) -> Any:
        session, slid = await original(self, token, client)
        if isinstance(session, CachedSession) and token == guest:
            await self.delete_session(session)  # the logout lands between the lookup and the channel switch
        return session, slid

    monkeypatch.setattr(sessions_type, "resolve_token", resolved_then_logged_out)
    result = await api.execute(ACTIVE_SESSION, token=guest, headers={"channel-token": channel["token"]})

    assert result.response.status_code == 200
    assert result.errors is None and result.data == {"activeSession": None}


@pytest.mark.parametrize(("remember_me", "renewed"), [(True, True), (False, False)])
async def test_the_cookie_of_a_remembered_session_is_renewed_when_its_expiry_slides(
    make_client: Callable[[Settings], Awaitable[GraphQLClient]],
    make_settings: SettingsFactory,
    remember_me: bool,
    renewed: bool,
) -> None:
    api = await make_client(make_settings(session_duration=4.0, login_rate_limit=None))
    login = await api.execute(REMEMBERED_LOGIN, {"r": remember_me})
    assert login.data == {"login": {"__typename": "CachedSession"}}
    assert ("max-age=4" in login.response.headers["set-cookie"].lower()) is remember_me

    await asyncio.sleep(2.2)  # past half its duration: the next lookup slides the expiry
    slid = await api.execute(ACTIVE_SESSION)

    assert slid.data is not None and slid.data["activeSession"] is not None
    cookie = slid.response.headers.get("set-cookie", "")
    assert ("max-age=" in cookie.lower()) is renewed
    if renewed:
        assert cookie.lower().count("max-age=4") + cookie.lower().count("max-age=3") == 1
        assert slid.response.headers["cache-control"] == "no-store"
    again = await api.execute(ACTIVE_SESSION)  # the next requests are served as before, no cookie
    assert "set-cookie" not in again.response.headers


REMEMBERED_LOGIN = """mutation($r: Boolean) { login(username: "superadmin", password: "superadmin", rememberMe: $r) {
  __typename } }"""
