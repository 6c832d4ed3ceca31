"""reauthenticate: the caller proves their password again, and their session gets a new token.

The session keeps everything else (its id, creation, expiry, cart, channel and remember-me choice), so
the device list, the cart and the cookie's lifetime go on as before; `authenticated_at` becomes now, a
fresh proof (server/services/fresh_proof.py). The old token stops working at once: the row's token
digest is replaced by one UPDATE, under the user lock a login takes, and the old cached copy is
forgotten on every instance once that has committed, as a logout's is.

Each call is a login attempt for the login limiter (the user's identifier and the client's address),
and fails as login does (InvalidCredentials, NotVerified, RATE_LIMITED), recorded as LOGIN_FAILED;
success is recorded as REAUTHENTICATED in the transaction of the rotation. Guests and impersonated
sessions are FORBIDDEN: the administrator behind an impersonation must never turn it into a proof.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import Session, SessionEventType, User
from server.cached_session import CachedSession
from server.metrics import LoginOutcome as LoginMetric
from server.metrics import record_login
from server.services.auth import MAX_CREDENTIAL_LENGTH, InvalidCredentials, NotVerified
from server.services.client_info import kept_address
from server.services.errors import ForbiddenError, RateLimitedError, SessionEndedError, StaleCredentialsError
from server.services.login_failures import INVALID_CREDENTIALS, NOT_VERIFIED, RATE_LIMITED, LoginFailures
from server.services.login_limiter import LoginLimiter, check_login_limit, identifier_key
from server.services.orders_merge import lock_for_login
from server.services.password_upgrade import proven_after_upgrade, upgrade_password_hash
from server.services.passwords import verify_password
from server.services.request_context import RequestContext
from server.services.session import SessionService
from server.services.session_events import SessionEventRecord, record_events, recording_transaction
from server.services.tokens import new_session_token, token_digest
from server.settings import Settings

#: how the login metric counts each refusal
_COUNTED_AS: dict[str, LoginMetric] = {
    INVALID_CREDENTIALS: "invalid",
    NOT_VERIFIED: "not_verified",
    RATE_LIMITED: "rate_limited",
}


@dataclass(frozen=True, slots=True)
class Reauthenticated:
    """The session under its new token, and whether its cookie outlives the browser (as its login chose)."""

    session: CachedSession
    remember_me: bool


ReauthenticationOutcome = Reauthenticated | InvalidCredentials | NotVerified


class Reauthentication:
    def __init__(
        self,
        sessions: SessionService,
        settings: Settings,
        limiter: LoginLimiter | None = None,
        failures: LoginFailures | None = None,
    ) -> None:
        """`limiter` is the login limiter (None: no limit); `failures` records LOGIN_FAILED (None: not recorded)."""
        self._sessions = sessions
        self._require_verification = settings.require_verification
        self._address_mode = settings.session_client_address
        self._limiter = limiter
        self._failures = failures

    async def reauthenticate(
        self, ctx: RequestContext, session: CachedSession, password: str
    ) -> ReauthenticationOutcome:
        """Check `password` against the user of `session` and rotate the session's token (see the module)."""
        if session.user is None or session.impersonator_id is not None:
            raise ForbiddenError()
        user_id = session.user.id
        try:
            await check_login_limit(self._limiter, session.user.identifier, ctx.client_address)
        except RateLimitedError:
            await self._failed(ctx, user_id, RATE_LIMITED)
            raise
        user = await User.filter(id=user_id).first()
        # An over-long password is never cut to fit: checked against no hash (the same time), it fails.
        proven = None if user is None or len(password) > MAX_CREDENTIAL_LENGTH else user.password_hash
        if not await verify_password(proven, password[:MAX_CREDENTIAL_LENGTH]) or user is None:
            return await self._failed(ctx, user_id, INVALID_CREDENTIALS)
        if self._require_verification and not user.verified:
            return await self._failed(ctx, user_id, NOT_VERIFIED)
        try:
            rotated = await self._rotate(ctx, session, user)
        except StaleCredentialsError:
            # Changed since it was checked: by another login's upgrade of the same hash (the proof
            # stands, try once more), or by a reset or a deletion (it does not).
            current = await proven_after_upgrade(user, password)
            if current is None:
                return await self._failed(ctx, user_id, INVALID_CREDENTIALS)
            rotated = await self._rotate(ctx, session, current)
        await upgrade_password_hash(user, password)
        if self._limiter is not None:
            await self._limiter.reset(identifier_key(user.identifier))
        return rotated

    async def _rotate(self, ctx: RequestContext, session: CachedSession, user: User) -> Reauthenticated:
        """Give the session a new token and `authenticated_at` now, record it, and forget the old token.

        StaleCredentialsError when `user`'s password or verification changed since it was checked;
        SessionEndedError when the session ended (or another reauthenticate rotated it) meanwhile."""
        token = new_session_token()
        key = token_digest(token)
        now = self._sessions.now()
        async with recording_transaction() as connection:
            await lock_for_login(user, None, connection)  # user first, then the session: every writer's order
            row = (
                await Session.filter(id=session.id, token_hash=session.cache_key, invalidated=False, expires__gt=now)
                .using_db(connection)
                .select_for_update()
                .only("id", "remember_me", "client_address")
                .first()
            )
            if row is None:
                raise SessionEndedError()
            await Session.filter(id=session.id).using_db(connection).update(token_hash=key, authenticated_at=now)
            event = SessionEventRecord(
                SessionEventType.REAUTHENTICATED,
                now,
                session_id=session.id,
                user_id=user.id,
                ip_address=kept_address(ctx.client_address, self._address_mode),
            )
            await record_events(connection, [event])
        await self._sessions.forget_cached([session.cache_key], "reauthenticated")
        renewed = await self._sessions.serialize_stored_session(token)
        if renewed is None:  # ended between the commit and this read, by a concurrent delete
            raise SessionEndedError()
        return Reauthenticated(renewed, row.remember_me)

    async def _failed(self, ctx: RequestContext, user_id: int, reason: str) -> InvalidCredentials | NotVerified:
        """Count and record a refused attempt; the refusal login would answer (none for the limiter's)."""
        record_login(_COUNTED_AS[reason])
        if self._failures is not None:
            await self._failures.record(user_id, reason, self._sessions.now(), ctx.client_address)
        return NotVerified() if reason == NOT_VERIFIED else InvalidCredentials()
