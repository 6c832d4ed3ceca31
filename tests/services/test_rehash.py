"""A login upgrades a hash made with other Argon2 costs: the password, the sessions and any concurrent change stay."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher

import server.services.auth as auth_module
import server.services.password_upgrade as upgrade_module
import server.services.passwords as passwords_module
import server.services.user as user_module
from models import Session, User
from server.cached_session import CachedSession
from server.services import UserService
from server.services.auth import InvalidCredentials
from server.services.passwords import HashingPool, build_hasher
from server.settings import Settings
from tests.services.support import Kit

T = TypeVar("T")
PASSWORD, CHANGED_PASSWORD = "correct horse battery staple", "a new password entirely"
#: Cheap costs of an older deployment: 8 MiB, one pass.
OLD_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
CURRENT_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
STEP_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def production_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's default costs (the other tests' cheap ones would count as "other costs" here)."""
    defaults = Settings()
    monkeypatch.setattr(
        passwords_module,
        "_hasher",
        build_hasher(defaults.password_hash_memory_kib, defaults.password_hash_time_cost),
    )


class Pause:
    """The next call through `wrap` stops after its work (having run `meanwhile`, if given) until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        self.armed = True

    def wrap(self, function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def paused(*args: Any, **kwargs: Any) -> T:
            result = await function(*args, **kwargs)
            if self.armed:
                self.armed = False
                self.reached.set()
                await self.released.wait()
            return result

        return paused


async def bounded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(STEP_TIMEOUT):
        return await awaitable


async def user_with_old_hash(kit: Kit, identifier: str = "alice") -> User:
    user = await kit.users.create(identifier, PASSWORD)
    await User.filter(id=user.id).update(password_hash=OLD_HASHER.hash(PASSWORD))
    return await User.get(id=user.id)


async def change_password(kit: Kit, user: User) -> None:
    """An administrator sets another password (updateUser), which ends the user's sessions."""
    await UserService(kit.sessions).update(user.id, password=CHANGED_PASSWORD)


async def stored_hash(user: User) -> str:
    stored = (await User.get(id=user.id)).password_hash
    assert stored is not None
    return stored


async def test_a_login_stores_a_hash_at_todays_costs(kit: Kit) -> None:
    user = await user_with_old_hash(kit)

    outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert isinstance(outcome, CachedSession)
    upgraded = await stored_hash(user)
    assert upgraded.startswith(CURRENT_PREFIX)
    assert await passwords_module.verify_password(upgraded, PASSWORD) is True


async def test_a_hash_of_argon2_cffis_defaults_is_upgraded_too(kit: Kit) -> None:
    user = await kit.users.create("alice", PASSWORD)
    await User.filter(id=user.id).update(password_hash=PasswordHasher().hash(PASSWORD))

    assert isinstance(await kit.auth.login(await kit.ctx(), "alice", PASSWORD), CachedSession)

    assert (await stored_hash(user)).startswith(CURRENT_PREFIX)


async def test_a_wrong_password_leaves_the_old_hash(kit: Kit) -> None:
    user = await user_with_old_hash(kit)
    old = user.password_hash

    assert await kit.auth.login(await kit.ctx(), "alice", "not the password") == InvalidCredentials()

    assert await stored_hash(user) == old


async def test_a_hash_at_todays_costs_is_left_as_it_is(kit: Kit) -> None:
    user = await kit.users.create("alice", PASSWORD)
    current = await stored_hash(user)
    assert current.startswith(CURRENT_PREFIX)

    assert isinstance(await kit.auth.login(await kit.ctx(), "alice", PASSWORD), CachedSession)

    assert await stored_hash(user) == current


async def test_the_users_other_sessions_survive_the_upgrade(kit: Kit) -> None:
    user = await user_with_old_hash(kit)
    other = await kit.login(user)

    outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert isinstance(outcome, CachedSession)
    assert (await stored_hash(user)).startswith(CURRENT_PREFIX)
    assert await kit.sessions.get_session_from_token(other.token) == other
    assert await Session.filter(user_id=user.id, invalidated=False).count() == 2


async def test_a_password_change_between_the_check_and_the_upgrade_wins(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await user_with_old_hash(kit)
    changed: list[str] = []

    async def hash_then_change(password: str) -> str:
        # The upgrade has its new hash; before it is stored, the password is changed.
        upgraded = await passwords_module.hash_password(password)
        await change_password(kit, user)
        changed.append(await stored_hash(user))
        return upgraded

    monkeypatch.setattr(upgrade_module, "hash_password", hash_then_change)

    await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert len(changed) == 1
    assert await stored_hash(user) == changed[0]
    assert await passwords_module.verify_password(changed[0], CHANGED_PASSWORD) is True
    assert await passwords_module.verify_password(changed[0], PASSWORD) is False


async def test_a_login_checked_before_another_logins_upgrade_still_succeeds(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await user_with_old_hash(kit)
    pause = Pause()
    monkeypatch.setattr(auth_module, "verify_password", pause.wrap(passwords_module.verify_password))
    slow = asyncio.create_task(kit.auth.login(await kit.ctx(), "alice", PASSWORD))
    await bounded(pause.reached.wait())  # it proved the old hash and has not locked the user yet

    fast = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)
    upgraded = await stored_hash(user)
    pause.released.set()
    late = await bounded(slow)

    assert isinstance(fast, CachedSession) and isinstance(late, CachedSession)
    assert upgraded.startswith(CURRENT_PREFIX)
    assert await stored_hash(user) == upgraded  # upgraded once, by the first
    assert await kit.sessions.get_session_from_token(fast.token) == fast


async def test_a_login_checked_before_a_password_change_still_fails(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    user = await user_with_old_hash(kit)
    pause = Pause()
    monkeypatch.setattr(auth_module, "verify_password", pause.wrap(passwords_module.verify_password))
    login = asyncio.create_task(kit.auth.login(await kit.ctx(), "alice", PASSWORD))
    await bounded(pause.reached.wait())

    await change_password(kit, user)
    pause.released.set()

    assert await bounded(login) == InvalidCredentials()
    assert await Session.filter(user_id=user.id).count() == 0


async def test_a_full_hashing_queue_skips_the_upgrade_but_not_the_login(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await user_with_old_hash(kit)
    old = user.password_hash
    pool = HashingPool(threads=1, queue=0)
    monkeypatch.setattr(passwords_module, "_pool", pool)
    release = threading.Event()
    occupied: list[asyncio.Task[bool]] = []

    async def fill_the_pool_then_upgrade(user: User, password: str) -> bool:
        # After the login's check, before the upgrade's hash, another check takes the only slot.
        occupied.append(asyncio.create_task(pool.run(release.wait, 10)))
        await asyncio.sleep(0.05)
        return await upgrade_module.upgrade_password_hash(user, password)

    monkeypatch.setattr(auth_module, "upgrade_password_hash", fill_the_pool_then_upgrade)
    try:
        outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)
    finally:
        release.set()
        slot_taken = await asyncio.gather(*occupied)
        pool.shutdown()

    assert isinstance(outcome, CachedSession)
    assert slot_taken == [True]
    assert await stored_hash(user) == old


async def test_a_password_change_checked_before_a_logins_upgrade_still_succeeds(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given alice, with a hash of older costs, signed in
    user = await user_with_old_hash(kit)
    session = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)
    assert isinstance(session, CachedSession)
    await User.filter(id=user.id).update(password_hash=OLD_HASHER.hash(PASSWORD))
    user = await User.get(id=user.id)
    upgrades: list[bool] = []

    async def hash_after_an_upgrade(password: str) -> str:
        # changePassword proved the old hash; before it stores the new one, a login upgrades the old
        upgrades.append(await upgrade_module.upgrade_password_hash(await User.get(id=user.id), PASSWORD))
        return await passwords_module.hash_password(password)

    monkeypatch.setattr(user_module, "hash_password", hash_after_an_upgrade)

    # when she changes her password meanwhile, then the change succeeds against the upgraded hash
    assert await UserService(kit.sessions).change_password(session, PASSWORD, CHANGED_PASSWORD) is True
    assert upgrades == [True]
    assert await passwords_module.verify_password(await stored_hash(user), CHANGED_PASSWORD) is True


async def test_a_password_change_checked_before_another_change_still_fails(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await user_with_old_hash(kit)
    session = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)
    assert isinstance(session, CachedSession)

    resets: list[None] = []

    async def hash_after_a_reset(password: str) -> str:
        if not resets:  # once: the administrator's own change below hashes too
            resets.append(None)
            await change_password(kit, user)  # an administrator sets another password meanwhile
        return await passwords_module.hash_password(password)

    monkeypatch.setattr(user_module, "hash_password", hash_after_a_reset)

    assert await UserService(kit.sessions).change_password(session, PASSWORD, "what alice wanted") is False
    assert await passwords_module.verify_password(await stored_hash(user), CHANGED_PASSWORD) is True
