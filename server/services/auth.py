"""Native username/password authentication, then a new authenticated session."""

from __future__ import annotations

from dataclasses import dataclass

from models import User
from server.cached_session import CachedSession
from server.metrics import record_login
from server.services.errors import RateLimitedError, SessionEndedError, StaleCredentialsError
from server.services.identifiers import lookup_identifier
from server.services.login_limiter import LoginLimiter, check_login_limit, identifier_key
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
        self, sessions: SessionService, require_verification: bool, limiter: LoginLimiter | None = None
    ) -> None:
        self._sessions = sessions
        self._require_verification = require_verification
        self._limiter = limiter

    async def login(self, ctx: RequestContext, username: str, password: str, remember_me: bool = True) -> LoginOutcome:
        """Check the password; an unknown user and a wrong password fail alike, in about the same time.

        Every call is one attempt for the login limiter; an attempt over the limit raises
        RateLimitedError before the user is looked up or any password is checked.
        """
        try:
            await check_login_limit(self._limiter, username, ctx.client_address)
        except RateLimitedError:
            record_login("rate_limited")
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
            return InvalidCredentials()
        if self._require_verification and not user.verified:
            record_login("not_verified")
            return NotVerified()
        try:
            session = await self._sessions.create_new_authenticated_session(
                ctx, user, NATIVE_AUTH_STRATEGY_NAME, remember_me, proved=True
            )
        except (StaleCredentialsError, SessionEndedError):
            # The password was reset or the user deleted while it was checked, or just after the session
            # was made (which ended it): either way the credential proven is no longer good.
            record_login("invalid")
            return InvalidCredentials()
        if self._limiter is not None:
            await self._limiter.reset(identifier_key(username))
        record_login("success")
        return session
