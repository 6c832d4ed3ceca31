"""A session ended must stay ended: refills, logins and password changes racing a revocation.

Each attack is first forced deterministically (a hook pauses one side at the worst moment while the
other completes), then run as randomized trials. On `postgres` the two sides are two service
instances sharing one Redis namespace, as two server processes would; on `sqlite` they share the
in-process cache, as two requests in one process do.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_asyncio

import server.services.auth as auth_module
import server.services.passwords as passwords_module
import server.services.session_refill as session_refill_module
import server.services.stored_session as stored_session_module
import server.services.user as user_module
from models import Role, Session, User
from server.cache import build_session_cache
from server.cached_session import CachedSession
from server.services import Services
from server.services.auth import InvalidCredentials
from server.services.request_context import RequestContext
from server.services.tokens import token_digest
from server.settings import Settings

T = TypeVar("T")
OLD_PASSWORD, NEW_PASSWORD = "old-password-1", "new-password-2"
TRIALS = 25
LOOKUPS_PER_TRIAL = 12
#: Seconds any one forced interleaving may take before the test fails instead of hanging.
STEP_TIMEOUT = 30.0


async def bounded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(STEP_TIMEOUT):
        return await awaitable


class Pause:
    """Arms a hook: the next call through it stops after its work until `release()`."""

    def __init__(self) -> None:
        self.armed = False
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    def arm(self) -> None:
        self.armed = True
        self.reached.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def point(self) -> None:
        if self.armed:
            self.armed = False
            self.reached.set()
            await self._released.wait()

    def wrap(self, function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def paused(*args: Any, **kwargs: Any) -> T:
            result = await function(*args, **kwargs)
            await self.point()
            return result

        return paused


@pytest.fixture
def after_session_read(monkeypatch: pytest.MonkeyPatch) -> Pause:
    """Pauses a refill between its database read and its cache write."""
    pause = Pause()
    read = pause.wrap(stored_session_module.load_stored_session)
    monkeypatch.setattr(session_refill_module, "load_stored_session", read)
    return pause


@pytest.fixture
def after_password_check(monkeypatch: pytest.MonkeyPatch) -> Pause:
    """Pauses a login or a password change right after Argon2 accepted the password."""
    pause = Pause()
    monkeypatch.setattr(auth_module, "verify_password", pause.wrap(passwords_module.verify_password))
    monkeypatch.setattr(user_module, "verify_password", pause.wrap(passwords_module.verify_password))
    return pause


@pytest_asyncio.fixture
async def other(services: Services, settings: Settings) -> AsyncIterator[Services]:
    """A second instance: its own services and, on Redis, its own cache client on the same namespace."""
    if not settings.session_cache.startswith("redis://"):
        yield Services.build(services.sessions._cache, settings)
        return
    cache = build_session_cache(settings, namespace=settings.session_cache_namespace)
    try:
        yield Services.build(cache, settings)
    finally:
        await cache.close()


async def resolves_anywhere(token: str, *instances: Services) -> list[bool]:
    return [await instance.sessions.get_session_from_token(token) is not None for instance in instances]


async def ctx(services: Services, session: CachedSession | None = None) -> RequestContext:
    channel = await services.channels.get_default_channel()
    return RequestContext(channel_id=channel.id, session=session)


async def make_user(services: Services, identifier: str = "alice@example.com") -> User:
    return await services.users.create(identifier, OLD_PASSWORD)


# --- point 2: a refill must never write back a session deleted after it read it ---------------------


async def test_a_refill_paused_across_a_logout_does_not_bring_the_session_back(
    services: Services, other: Services, after_session_read: Pause
) -> None:
    session = await services.sessions.create_anonymous_session()
    await services.sessions.clear_cache()  # the next lookup misses and reads the database
    after_session_read.arm()
    refill = asyncio.create_task(other.sessions.get_session_from_token(session.token))
    await bounded(after_session_read.reached.wait())

    assert await services.sessions.delete_session(session) is True
    after_session_read.release()
    await bounded(refill)  # it read the session before the logout was acknowledged

    assert await resolves_anywhere(session.token, services, other) == [False, False]
    assert await services.sessions._cache.strategy.get(token_digest(session.token)) is None


async def test_a_login_paused_before_caching_its_session_cannot_outlive_a_revocation_of_its_user(
    services: Services, other: Services, after_session_read: Pause
) -> None:
    user = await make_user(services)
    after_session_read.arm()
    login = asyncio.create_task(other.auth.login(await ctx(other), user.identifier, OLD_PASSWORD))
    await bounded(after_session_read.reached.wait())

    assert await services.sessions.delete_sessions_by_user(user.id) == 1
    after_session_read.release()
    session = await bounded(login)

    assert isinstance(session, CachedSession)
    assert await resolves_anywhere(session.token, services, other) == [False, False]


async def test_a_refill_paused_across_a_role_change_does_not_cache_the_old_permissions(
    services: Services, other: Services, after_session_read: Pause
) -> None:
    user = await make_user(services)
    role = await Role.get(code="__super_admin_role__")
    await user.roles.add(role)
    session = await services.auth.login(await ctx(services), user.identifier, OLD_PASSWORD)
    assert isinstance(session, CachedSession) and session.user is not None
    await services.sessions.clear_cache()
    after_session_read.arm()
    refill = asyncio.create_task(other.sessions.get_session_from_token(session.token))
    await bounded(after_session_read.reached.wait())

    await user.roles.clear()  # what updateUser or updateRole write, then the cache is cleared
    await services.sessions.clear_cache()
    after_session_read.release()
    await bounded(refill)

    for instance in (services, other):
        found = await instance.sessions.get_session_from_token(session.token)
        assert found is not None and found.user is not None
        assert found.user.channel_permissions == ()


async def test_randomized_lookups_racing_a_logout_never_leave_the_token_alive(
    services: Services, other: Services
) -> None:
    rng = random.Random(7)
    survivors = 0
    for _ in range(TRIALS):
        session = await services.sessions.create_anonymous_session()
        await services.sessions.clear_cache()

        async def lookup(delay: float) -> None:
            await asyncio.sleep(delay)
            await other.sessions.get_session_from_token(session.token)

        async def logout(delay: float) -> None:
            await asyncio.sleep(delay)
            await services.sessions.delete_session(session)

        delays = [rng.uniform(0, 0.01) for _ in range(LOOKUPS_PER_TRIAL)]
        await bounded(asyncio.gather(*(lookup(d) for d in delays), logout(rng.uniform(0, 0.01))))
        survivors += any(await resolves_anywhere(session.token, services, other))
    assert survivors == 0


# --- point 1: a credential change ends every login that proved the old credential --------------------


@pytest.mark.parametrize("change", ["reset", "delete", "change-password"])
async def test_a_login_that_proved_the_old_password_gets_no_session_after_the_credential_changed(
    services: Services, other: Services, after_password_check: Pause, change: str
) -> None:
    user = await make_user(services)
    own = await services.auth.login(await ctx(services), user.identifier, OLD_PASSWORD)
    assert isinstance(own, CachedSession)
    after_password_check.arm()
    login = asyncio.create_task(other.auth.login(await ctx(other), user.identifier, OLD_PASSWORD))
    await bounded(after_password_check.reached.wait())

    if change == "reset":
        await services.users.update(user.id, password=NEW_PASSWORD)
    elif change == "delete":
        await services.users.delete(user.id)
    else:
        assert await services.users.change_password(own, OLD_PASSWORD, NEW_PASSWORD) is True
    after_password_check.release()

    assert await bounded(login) == InvalidCredentials()
    survivors = {own.id} if change == "change-password" else set()
    assert set(cast(list[int], await Session.filter(user_id=user.id).values_list("id", flat=True))) == survivors


async def test_a_password_change_that_proved_the_old_password_loses_to_a_reset_made_meanwhile(
    services: Services, after_password_check: Pause
) -> None:
    user = await make_user(services)
    own = await services.auth.login(await ctx(services), user.identifier, OLD_PASSWORD)
    assert isinstance(own, CachedSession)
    after_password_check.arm()
    change = asyncio.create_task(services.users.change_password(own, OLD_PASSWORD, "attacker-password"))
    await bounded(after_password_check.reached.wait())

    await services.users.update(user.id, password=NEW_PASSWORD)
    after_password_check.release()

    assert await bounded(change) is False
    assert isinstance(await services.auth.login(await ctx(services), user.identifier, NEW_PASSWORD), CachedSession)
    attacker = await services.auth.login(await ctx(services), user.identifier, "attacker-password")
    assert attacker == InvalidCredentials()


async def test_randomized_logins_racing_a_password_reset_leave_no_session_behind(
    services: Services, other: Services
) -> None:
    rng = random.Random(11)
    for trial in range(TRIALS // 5):
        user = await make_user(services, f"user-{trial}@example.com")

        async def login(delay: float) -> CachedSession | None:
            await asyncio.sleep(delay)
            result = await other.auth.login(await ctx(other), user.identifier, OLD_PASSWORD)
            return result if isinstance(result, CachedSession) else None

        async def reset(delay: float) -> None:
            await asyncio.sleep(delay)
            await services.users.update(user.id, password=NEW_PASSWORD)

        results = await bounded(
            asyncio.gather(*(login(rng.uniform(0, 0.02)) for _ in range(6)), reset(rng.uniform(0, 0.02)))
        )
        assert await Session.filter(user_id=user.id).count() == 0
        for session in results:
            if session is not None:
                assert await resolves_anywhere(session.token, services, other) == [False, False]
