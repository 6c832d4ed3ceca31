"""AuthService.login: native username/password authentication."""

from __future__ import annotations

from models import Permission, Session, User
from server.cached_session import CachedSession
from server.services import UserService
from server.services.auth import MAX_CREDENTIAL_LENGTH, InvalidCredentials, NotVerified
from tests.services.support import Kit, KitFactory

PASSWORD = "correct horse battery staple"


async def test_successful_login_returns_a_native_authenticated_session(kit: Kit) -> None:
    user = await kit.users.create("alice", PASSWORD)

    outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert isinstance(outcome, CachedSession)
    assert outcome.authentication_strategy == "native"
    assert outcome.user is not None
    assert (outcome.user.id, outcome.user.identifier) == (user.id, "alice")
    assert await kit.sessions.get_session_from_token(outcome.token) == outcome


async def test_successful_login_sets_last_login(kit: Kit) -> None:
    await kit.users.create("alice", PASSWORD)
    kit.clock.advance(3600)

    await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert (await User.get(identifier="alice")).last_login == kit.clock.at()


async def test_bootstrapped_superadmin_can_log_in_with_superadmin_rights(kit: Kit) -> None:
    outcome = await kit.auth.login(await kit.ctx(), "superadmin", "superadmin")

    assert isinstance(outcome, CachedSession)
    assert outcome.user is not None
    assert Permission.SuperAdmin in outcome.user.permissions_on((await kit.default_channel()).id)


async def test_wrong_password_and_unknown_user_fail_alike(kit: Kit) -> None:
    await kit.users.create("alice", PASSWORD)

    wrong_password = await kit.auth.login(await kit.ctx(), "alice", "not the password")
    unknown_user = await kit.auth.login(await kit.ctx(), "mallory", PASSWORD)

    assert wrong_password == InvalidCredentials()
    assert unknown_user == InvalidCredentials()
    assert wrong_password == unknown_user


async def test_failed_login_creates_no_session_and_leaves_last_login(kit: Kit) -> None:
    await kit.users.create("alice", PASSWORD)

    await kit.auth.login(await kit.ctx(), "alice", "not the password")

    assert await Session.all().count() == 0
    assert (await User.get(identifier="alice")).last_login is None


async def test_unverified_user_gets_not_verified_when_verification_is_required(make_kit: KitFactory) -> None:
    kit = make_kit(require_verification=True)
    await kit.users.create("alice", PASSWORD, verified=False)

    outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert outcome == NotVerified()
    assert await Session.all().count() == 0


async def test_unverified_user_with_a_wrong_password_gets_invalid_credentials(make_kit: KitFactory) -> None:
    kit = make_kit(require_verification=True)
    await kit.users.create("alice", PASSWORD, verified=False)

    assert await kit.auth.login(await kit.ctx(), "alice", "nope") == InvalidCredentials()


async def test_unverified_user_logs_in_when_verification_is_not_required(make_kit: KitFactory) -> None:
    kit = make_kit(require_verification=False)
    await kit.users.create("alice", PASSWORD, verified=False)

    outcome = await kit.auth.login(await kit.ctx(), "alice", PASSWORD)

    assert isinstance(outcome, CachedSession)
    assert outcome.user is not None and outcome.user.verified is False


async def test_user_without_a_password_cannot_log_in(kit: Kit) -> None:
    await kit.users.create("sso-only", None)

    assert await kit.auth.login(await kit.ctx(), "sso-only", "") == InvalidCredentials()
    assert await kit.auth.login(await kit.ctx(), "sso-only", "anything") == InvalidCredentials()
    assert await Session.all().count() == 0


async def test_over_long_credentials_fail_as_invalid(kit: Kit) -> None:
    long_password = "x" * (MAX_CREDENTIAL_LENGTH + 1)
    await kit.users.create("alice", "x" * MAX_CREDENTIAL_LENGTH)

    assert await kit.auth.login(await kit.ctx(), "alice", long_password) == InvalidCredentials()
    assert await kit.auth.login(await kit.ctx(), "a" * (MAX_CREDENTIAL_LENGTH + 1), "x") == InvalidCredentials()


async def test_a_current_password_with_a_suffix_past_the_limit_does_not_pass_for_the_real_one(kit: Kit) -> None:
    real = "r" * MAX_CREDENTIAL_LENGTH
    await kit.users.create("alice", real)
    session = await kit.auth.login(await kit.ctx(), "alice", real)
    assert isinstance(session, CachedSession)

    assert await kit.auth.login(await kit.ctx(), "alice", real + "wrong") == InvalidCredentials()
    users = UserService(kit.sessions)
    assert await users.change_password(session, real + "wrong", "new-password") is False
    assert await kit.auth.login(await kit.ctx(), "alice", real) != InvalidCredentials()
    assert await users.change_password(session, real, "new-password") is True
    assert await kit.auth.login(await kit.ctx(), "alice", "new-password") != InvalidCredentials()
