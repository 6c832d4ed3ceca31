"""Users: created by administrators, with an optional native password stored as an Argon2 hash.

Whatever would make a session wrong ends or refreshes it here: deleting a user or changing their
password ends their sessions (a user's own password change keeps the session that made it), and
a change of identifier, verification or roles clears the session cache, which holds all three.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from models import Role, Session, SessionEventType, User
from server.cached_session import CachedSession
from server.services.actor import NOBODY, Actor
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from server.services.errors import EntityNotFoundError, ForbiddenError, UserInputError
from server.services.identifiers import MAX_IDENTIFIER_LENGTH as MAX_IDENTIFIER_LENGTH
from server.services.identifiers import normalise_identifier
from server.services.login_limiter import LoginLimiter, check_login_limit, identifier_key
from server.services.password_upgrade import proven_after_upgrade
from server.services.passwords import hash_password, verify_password
from server.services.session import SessionService
from server.services.session_deletes import Ending
from server.services.session_events import SessionEventRecord, record_events, recording_transaction

MIN_PASSWORD_LENGTH = 1
MAX_PASSWORD_LENGTH = 1024


class UserService:
    def __init__(self, sessions: SessionService | None = None, limiter: LoginLimiter | None = None) -> None:
        """`sessions` is needed by every method that can end sessions (delete, update, change_password)."""
        self._session_service = sessions
        self._limiter = limiter

    @property
    def _sessions(self) -> SessionService:
        if self._session_service is None:
            raise RuntimeError("this UserService was built without a SessionService")
        return self._session_service

    async def find_one(self, user_id: int) -> User | None:
        return await User.filter(id=user_id).prefetch_related("roles__channels").first()

    async def find_by_identifier(self, identifier: str) -> User | None:
        """The user `identifier` names once normalised (BAD_USER_INPUT when no user could have it)."""
        return await User.filter(identifier=_checked_identifier(identifier)).prefetch_related("roles__channels").first()

    async def find_manageable(self, user_id: int, *, actor: Actor) -> User:
        """The user, with roles and channels, if the actor holds all the user holds (to act on or as them)."""
        user = await self.find_one(user_id)
        if user is None:
            raise EntityNotFoundError("User", user_id)
        actor.check_holds_roles(user.roles)
        return user

    async def create(
        self,
        identifier: str,
        password: str | None,
        verified: bool = True,
        role_ids: Sequence[int] = (),
        *,
        actor: Actor = NOBODY,
    ) -> User:
        """A new user; giving them roles is granting, so the actor must hold what each role grants."""
        identifier = _checked_identifier(identifier)
        if password is not None:
            _check_password(password)
        roles = await _roles(role_ids)
        actor.check_holds_roles(roles)
        if await User.filter(identifier=identifier).exists():
            raise UserInputError(f"a user with the identifier '{identifier}' already exists")
        password_hash = await hash_password(password) if password is not None else None
        try:
            async with recording_transaction() as connection:
                user = await User.create(
                    identifier=identifier, password_hash=password_hash, verified=verified, using_db=connection
                )
                if roles:
                    await user.roles.add(*roles, using_db=connection)
        except IntegrityError:
            raise UserInputError(f"a user with the identifier '{identifier}' already exists") from None
        return await self._reloaded(user.id)

    async def update(
        self,
        user_id: int,
        identifier: str | None = None,
        password: str | None = None,
        verified: bool | None = None,
        role_ids: Sequence[int] | None = None,
        *,
        actor: Actor = NOBODY,
    ) -> User:
        """Change what is given. A new password ends all of the user's sessions; any other change
        clears the session cache (cached sessions carry the identifier, verification and permissions).

        The actor must hold all the user holds, and what each role given to them grants. The superadmin
        keeps the SuperAdmin role and stays verified."""
        if identifier is not None:
            identifier = _checked_identifier(identifier)
        if password is not None:
            _check_password(password)
        roles = None if role_ids is None else await _roles(role_ids)
        _check_update(await self.find_manageable(user_id, actor=actor), actor, verified, roles)
        password_hash = await hash_password(password) if password is not None else None
        ended: list[str] = []
        try:
            async with recording_transaction() as connection:
                # Locked as login locks it, so no session can be created for the user half-way through.
                user = await User.filter(id=user_id).using_db(connection).select_for_update().first()
                if user is None:
                    raise EntityNotFoundError("User", user_id)
                if identifier is not None and identifier != user.identifier:
                    if await User.filter(identifier=identifier).exclude(id=user_id).using_db(connection).exists():
                        raise UserInputError(f"a user with the identifier '{identifier}' already exists")
                    user.identifier = identifier
                if verified is not None:
                    user.verified = verified
                if password_hash is not None:
                    user.password_hash = password_hash
                await user.save(using_db=connection)
                if roles is not None:
                    await user.roles.clear(using_db=connection)
                    if roles:
                        await user.roles.add(*roles, using_db=connection)
                if password_hash is not None:
                    ended = await self._password_changed(connection, user_id, actor.user_id)
        except IntegrityError:
            if identifier is None:
                raise
            raise UserInputError(f"a user with the identifier '{identifier}' already exists") from None
        await self._sessions.forget_cached(ended, "password_changed")
        if identifier is not None or verified is not None or roles is not None:
            await self._sessions.clear_cache()
        return await self._reloaded(user_id)

    async def delete(self, user_id: int, *, actor: Actor = NOBODY) -> None:
        """Delete the user, their sessions (from the database and the cache) and their orders.

        The actor must hold all the user holds; the superadmin is never deleted."""
        if (await self.find_manageable(user_id, actor=actor)).is_superadmin:
            raise ForbiddenError("The superadmin user cannot be deleted")
        async with recording_transaction() as connection:
            user = await User.filter(id=user_id).using_db(connection).select_for_update().first()
            if user is None:
                raise EntityNotFoundError("User", user_id)
            ending = Ending(SessionEventType.REVOKED, "user-deleted", self._sessions.now(), actor.user_id)
            ended = await self._sessions.delete_user_sessions_in(connection, user_id, ending=ending)
            await User.filter(id=user_id).using_db(connection).delete()
        await self._sessions.forget_cached(ended, "user_deleted")

    async def change_password(
        self, session: CachedSession, current_password: str, new_password: str, client_address: str | None = None
    ) -> bool:
        """The session's user changes their own password: False when `current_password` is wrong.

        The check counts as a login attempt (RateLimitedError when over the limit, before any
        password is checked). On success every other session of the user ends; this one stays.
        """
        if session.user is None:
            raise ForbiddenError()
        _check_password(new_password)
        user = await User.filter(id=session.user.id).first()
        if user is None:
            raise ForbiddenError()
        await check_login_limit(self._limiter, user.identifier, client_address)
        # An over-long password is never cut to fit: checked against no hash (the same time), it fails.
        proven = None if len(current_password) > MAX_PASSWORD_LENGTH else user.password_hash
        if not await verify_password(proven, current_password[:MAX_PASSWORD_LENGTH]):
            return False
        password_hash = await hash_password(new_password)
        ended = await self._replace_password(user.id, proven, password_hash, session.id)
        if ended is None:
            # A login may have upgraded the proven hash to today's costs meanwhile (the same password):
            # then the proof still holds, once more against the hash stored now.
            upgraded = await proven_after_upgrade(user, current_password)
            if upgraded is None:
                return False
            ended = await self._replace_password(user.id, upgraded.password_hash, password_hash, session.id)
            if ended is None:
                return False
        await self._sessions.forget_cached(ended, "password_changed")
        if self._limiter is not None:
            await self._limiter.reset(identifier_key(user.identifier))
        return True

    async def _replace_password(
        self, user_id: int, proven: str | None, password_hash: str, session_id: int
    ) -> list[str] | None:
        """Store `password_hash` for the user and end their other sessions, only if the hash `proven` is still
        theirs: a reset meanwhile (by an administrator who suspects this very password) must not be
        overwritten by whoever knew the old one. The cache keys of the sessions ended, or None."""
        async with recording_transaction() as connection:
            changed = (
                await User.filter(id=user_id, password_hash=proven)
                .using_db(connection)
                .select_for_update()
                .only("id")
                .first()
            )
            if changed is None:
                return None
            await User.filter(id=user_id).using_db(connection).update(password_hash=password_hash)
            return await self._password_changed(connection, user_id, None, session_id)

    async def _password_changed(
        self, connection: BaseDBAsyncClient, user_id: int, actor_id: int | None, session_id: int | None = None
    ) -> list[str]:
        """Record PASSWORD_CHANGED (by `actor_id` when another user, from the session `session_id` when
        the user's own) and end the user's other sessions (REVOKED "password-changed"), through the
        change's transaction; the cache keys of the sessions ended."""
        actor_id = None if actor_id == user_id else actor_id
        now = self._sessions.now()
        address = None
        if session_id is not None:
            found = await Session.filter(id=session_id).using_db(connection).first().values("client_address")
            address = None if found is None else found["client_address"]
        changed = SessionEventRecord(SessionEventType.PASSWORD_CHANGED, now, session_id, user_id, actor_id, address)
        await record_events(connection, [changed])
        ending = Ending(SessionEventType.REVOKED, "password-changed", now, actor_id)
        return await self._sessions.delete_user_sessions_in(connection, user_id, session_id, ending=ending)

    async def _reloaded(self, user_id: int) -> User:
        user = await self.find_one(user_id)
        assert user is not None
        return user


def _checked_identifier(identifier: str) -> str:
    return normalise_identifier(identifier)


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserInputError(f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


async def _roles(role_ids: Sequence[int]) -> list[Role]:
    wanted = set(role_ids)
    roles = await Role.filter(id__in=wanted).prefetch_related("channels") if wanted else []
    missing = wanted - {role.id for role in roles}
    if missing:
        raise EntityNotFoundError("Role", min(missing))
    return list(roles)


def _check_update(user: User, actor: Actor, verified: bool | None, roles: Sequence[Role] | None) -> None:
    """FORBIDDEN when the update would grant what the actor does not hold, or demote the superadmin.
    (Roles taken away are the user's, which the actor was checked to hold.)"""
    if roles is not None:
        held = {role.id for role in user.roles}
        actor.check_holds_roles(role for role in roles if role.id not in held)
        if user.is_superadmin and all(role.code != SUPER_ADMIN_ROLE_CODE for role in roles):
            raise ForbiddenError("The superadmin user keeps the SuperAdmin role")
    if user.is_superadmin and verified is False:
        raise ForbiddenError("The superadmin user stays verified")
