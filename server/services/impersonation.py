"""createNewAuthenticatedSession: a session for a user that a backend authenticated by its own means,
and, for a user other than the caller, an impersonation.

An impersonation records the administrator (`impersonator_id`), takes nothing from their session (no
cart merged or moved), ends at most IMPERSONATION_MAX_LIFETIME after its creation however active it is
(see SessionLifetime), is refused when the user holds any permission the administrator lacks (on any
channel of the user's roles, so switching channels cannot escalate either), and is recorded as
IMPERSONATION_STARTED with the administrator as actor (server/services/login_records.py). The customer
sees it in mySessions and may end it; it can never reauthenticate; it ends with its administrator
(SessionService.delete_user_sessions_in). A session made for oneself is a LOGIN with reason "api".
"""

from __future__ import annotations

from server.cached_session import CachedSession
from server.services.actor import Actor
from server.services.errors import ForbiddenError
from server.services.request_context import RequestContext
from server.services.session import SessionService
from server.services.user import UserService


class Impersonation:
    def __init__(self, sessions: SessionService, users: UserService) -> None:
        self._sessions = sessions
        self._users = users

    async def create_session(
        self, ctx: RequestContext, caller: CachedSession, user_id: int, authentication_strategy_name: str
    ) -> CachedSession:
        """A new session for the user `user_id`, made by `caller`; an impersonation unless it is the caller."""
        if caller.user is None:
            raise ForbiddenError()
        # Acting as a user is holding what they hold: only users within the caller's own permissions.
        user = await self._users.find_manageable(user_id, actor=Actor.of(caller.user))
        impersonator_id = None if user.id == caller.user.id else caller.user.id
        return await self._sessions.create_new_authenticated_session(
            ctx, user, authentication_strategy_name, impersonator_id=impersonator_id
        )
