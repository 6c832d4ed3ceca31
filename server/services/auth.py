"""Native username/password authentication, then a new authenticated session."""

from __future__ import annotations

from dataclasses import dataclass

from models import User
from server.cached_session import CachedSession
from server.metrics import record_login
from server.services.errors import RateLimitedError, SessionEndedError, StaleCredentialsError
from server.services.identifiers import lookup_identifier
from server.services.login_failures import INVALID_CREDENTIALS, NOT_VERIFIED, RATE_LIMITED, LoginFailures
from server.services.login_limiter import LoginLimiter, check_login_limit, identifier_key
from server.services.password_upgrade import proven_after_upgrade, upgrade_password_hash
from server.services.passwords import verify_password
from server.services.request_context import RequestContext
from server.services.session import SessionService
from server.services.text import is_storable
from server.services.user import MAX_IDENTIFIER_LENGTH

NATIVE_AUTH_STRATEGY_NAME = "native"
MAX_CREDENTIAL_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class InvalidCredentials:
    authentication_error: str = ""


@dataclass(frozen=True, slots=True)
class NotVerified:
    pass


LoginOutcome = CachedSession | InvalidCredentials | NotVerified


class AuthService:
    def __init__(
        self,
        sessions: SessionService,
        require_verification: bool,
        limiter: LoginLimiter | None = None,
        failures: LoginFailures | None = None,
    ) -> None:
        """`failures` records refused logins as LOGIN_FAILED events (None: they are not recorded)."""
        self._sessions = sessions
        self._require_verification = require_verification
        self._limiter = limiter
        self._failures = failures

    async def login(self, ctx: RequestContext, username: str, password: str, remember_me: bool = True) -> LoginOutcome:
        """Check the password; an unknown user and a wrong password fail alike, in about the same time.

        Every call is one attempt for the login limiter; an attempt over the limit raises
        RateLimitedError before the user is looked up or any password is checked.
        """
        try:
            await check_login_limit(self._limiter, username, ctx.client_address)
        except RateLimitedError:
            record_login("rate_limited")
            await self._failed(ctx, await _user_id_named(username), RATE_LIMITED)
            raise
        too_long = len(username) > MAX_CREDENTIAL_LENGTH or len(password) > MAX_CREDENTIAL_LENGTH
        identifier = lookup_identifier(username)  # "" when no user could have chosen it: finds nobody
        # No user has an identifier the column cannot hold, and looking one up would raise.
        impossible = too_long or len(identifier) > MAX_IDENTIFIER_LENGTH or not is_storable(identifier)
        user = None if impossible else await User.filter(identifier=identifier).first()
        password_hash = user.password_hash if user is not None else None
        # An over-long password is never cut to fit: it is checked against no user (the same work,
        # the same time) and fails.
        if not await verify_password(password_hash, password[:MAX_CREDENTIAL_LENGTH]) or user is None:
            record_login("invalid")
            await self._failed(ctx, None if user is None else user.id, INVALID_CREDENTIALS)
            return InvalidCredentials()
        if self._require_verification and not user.verified:
            record_login("not_verified")
            await self._failed(ctx, user.id, NOT_VERIFIED)
            return NotVerified()
        try:
            session, user = await self._create_session(ctx, user, password, remember_me)
        except (StaleCredentialsError, SessionEndedError):
            # The password was reset or the user deleted while it was checked, or just after the session
            # was made (which ended it): either way the credential proven is no longer good.
            record_login("invalid")
            await self._failed(ctx, user.id, INVALID_CREDENTIALS)
            return InvalidCredentials()
        # After the session is made, so the upgrade cannot trip this login's own credential check.
        await upgrade_password_hash(user, password)
        if self._limiter is not None:
            await self._limiter.reset(identifier_key(username))
        record_login("success")
        return session

    async def _create_session(
        self, ctx: RequestContext, user: User, password: str, remember_me: bool
    ) -> tuple[CachedSession, User]:
        """The session of a login of `user`, and the user row it was checked against: tried once more
        when the credential check failed only because another login upgraded the user's hash meanwhile."""
        try:
            session = await self._sessions.create_new_authenticated_session(
                ctx, user, NATIVE_AUTH_STRATEGY_NAME, remember_me, proved=True
            )
            return session, user
        except StaleCredentialsError:
            current = await proven_after_upgrade(user, password)
            if current is None:
                raise
        session = await self._sessions.create_new_authenticated_session(
            ctx, current, NATIVE_AUTH_STRATEGY_NAME, remember_me, proved=True
        )
        return session, current

    async def _failed(self, ctx: RequestContext, user_id: int | None, reason: str) -> None:
        if self._failures is not None:
            await self._failures.record(user_id, reason, self._sessions.now(), ctx.client_address)


async def _user_id_named(username: str) -> int | None:
    """The id of the user `username` names, as login looks it up; None when it names nobody."""
    identifier = lookup_identifier(username)
    if len(username) > MAX_CREDENTIAL_LENGTH or len(identifier) > MAX_IDENTIFIER_LENGTH or not is_storable(identifier):
        return None
    found = await User.filter(identifier=identifier).first().values("id")
    return None if found is None else int(found["id"])
