"""Native username/password authentication, then a new authenticated session."""

from __future__ import annotations

from dataclasses import dataclass

from models import User
from server.services.cached_session import CachedSession
from server.services.passwords import verify_password
from server.services.request_context import RequestContext
from server.services.session import SessionService

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
    def __init__(self, sessions: SessionService, require_verification: bool) -> None:
        self._sessions = sessions
        self._require_verification = require_verification

    async def login(self, ctx: RequestContext, username: str, password: str) -> LoginOutcome:
        """Check the password; an unknown user and a wrong password fail alike, in about the same time."""
        too_long = len(username) > MAX_CREDENTIAL_LENGTH or len(password) > MAX_CREDENTIAL_LENGTH
        user = None if too_long else await User.filter(identifier=username.strip()).first()
        password_hash = user.password_hash if user is not None else None
        if not await verify_password(password_hash, password[:MAX_CREDENTIAL_LENGTH]) or user is None:
            return InvalidCredentials()
        if self._require_verification and not user.verified:
            return NotVerified()
        return await self._sessions.create_new_authenticated_session(ctx, user, NATIVE_AUTH_STRATEGY_NAME)
