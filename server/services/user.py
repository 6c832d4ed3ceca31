"""Users: created by administrators, with an optional native password stored as an Argon2 hash.

Whatever would make a session wrong ends or refreshes it here: deleting a user or changing their
password ends their sessions (a user's own password change keeps the session that made it), and
a change of identifier, verification or roles clears the session cache, which holds all three.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import Role, User
from server.cached_session import CachedSession
from server.services.errors import EntityNotFoundError, ForbiddenError, UserInputError
from server.services.login_limiter import LoginLimiter, check_login_limit, identifier_key
from server.services.passwords import hash_password, verify_password
from server.services.session import SessionService
from server.services.text import check_storable

MAX_IDENTIFIER_LENGTH = 255
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

    async def create(
        self, identifier: str, password: str | None, verified: bool = True, role_ids: Sequence[int] = ()
    ) -> User:
        identifier = _checked_identifier(identifier)
        if password is not None:
            _check_password(password)
        roles = await _roles(role_ids)
        if await User.filter(identifier=identifier).exists():
            raise UserInputError(f"a user with the identifier '{identifier}' already exists")
        password_hash = await hash_password(password) if password is not None else None
        try:
            async with in_transaction() as connection:
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
    ) -> User:
        """Change what is given. A new password ends all of the user's sessions; any other change
        clears the session cache (cached sessions carry the identifier, verification and permissions)."""
        if identifier is not None:
            identifier = _checked_identifier(identifier)
        if password is not None:
            _check_password(password)
        roles = None if role_ids is None else await _roles(role_ids)
        password_hash = await hash_password(password) if password is not None else None
        ended: list[str] = []
        try:
            async with in_transaction() as connection:
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
                    ended = await self._sessions.delete_user_sessions_in(connection, user_id)
        except IntegrityError:
            if identifier is None:
                raise
            raise UserInputError(f"a user with the identifier '{identifier}' already exists") from None
        await self._sessions.forget_cached(ended)
        if identifier is not None or verified is not None or roles is not None:
            await self._sessions.clear_cache()
        return await self._reloaded(user_id)

    async def delete(self, user_id: int) -> None:
        """Delete the user, their sessions (from the database and the cache) and their orders."""
        async with in_transaction() as connection:
            user = await User.filter(id=user_id).using_db(connection).select_for_update().first()
            if user is None:
                raise EntityNotFoundError("User", user_id)
            ended = await self._sessions.delete_user_sessions_in(connection, user_id)
            await User.filter(id=user_id).using_db(connection).delete()
        await self._sessions.forget_cached(ended)

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
        if not await verify_password(user.password_hash, current_password[:MAX_PASSWORD_LENGTH]):
            return False
        password_hash = await hash_password(new_password)
        async with in_transaction() as connection:
            await User.filter(id=user.id).using_db(connection).select_for_update().only("id")
            await User.filter(id=user.id).using_db(connection).update(password_hash=password_hash)
            ended = await self._sessions.delete_user_sessions_in(connection, user.id, keep_session_id=session.id)
        await self._sessions.forget_cached(ended)
        if self._limiter is not None:
            await self._limiter.reset(identifier_key(user.identifier))
        return True

    async def _reloaded(self, user_id: int) -> User:
        user = await self.find_one(user_id)
        assert user is not None
        return user


def _checked_identifier(identifier: str) -> str:
    identifier = identifier.strip()
    if not 0 < len(identifier) <= MAX_IDENTIFIER_LENGTH:
        raise UserInputError(f"identifier must be 1 to {MAX_IDENTIFIER_LENGTH} characters")
    return check_storable(identifier, "identifier")


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserInputError(f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


async def _roles(role_ids: Sequence[int]) -> list[Role]:
    wanted = set(role_ids)
    roles = await Role.filter(id__in=wanted) if wanted else []
    missing = wanted - {role.id for role in roles}
    if missing:
        raise EntityNotFoundError("Role", min(missing))
    return list(roles)
