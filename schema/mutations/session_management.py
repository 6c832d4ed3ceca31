"""Ending sessions one by one (revokeSession) or all but this one (logoutOtherSessions)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.session_management import optional_id
from server.services.session_management import Revoked


@strawberry.type
class SessionManagementMutations:
    @strawberry.mutation(
        extensions=allow(Permission.Authenticated),
        description=(
            "Ends one live session: one of the caller's own, or anyone's with DeleteSession. Its token stops "
            "working at once, on every instance. Ending this request's own session is a logout (the session "
            "cookie is cleared too). True when a session was ended; false for an id that names no live session "
            "the caller may end, whoever's it is. Needs a logged-in user; ending another user's session (or a "
            "guest's) also needs a password proof younger than SESSION_FRESH_AGE (FORBIDDEN, extensions.reason "
            "FRESH_AUTHENTICATION_REQUIRED)."
        ),
    )
    async def revoke_session(
        self,
        info: Info,
        session_id: Annotated[
            strawberry.ID,
            strawberry.argument(name="id", description="The session's id, as SessionInfo.id and CachedSession.id."),
        ],
    ) -> bool:
        context = info.context
        caller = context.session
        assert caller is not None and caller.user is not None  # Authenticated
        number = optional_id(session_id, "Session")
        if number is None:
            return False
        held = context.permissions
        anyone = Permission.SuperAdmin in held or Permission.DeleteSession in held
        owner = None if anyone else caller.user.id
        fresh = context.services.fresh_proof.is_fresh(caller)
        revoked = await context.services.session_management.revoke_session(number, caller, owner, fresh)
        if revoked is Revoked.CURRENT:
            return await context.log_out()  # exactly as logout
        return revoked is Revoked.OTHER

    @strawberry.mutation(
        extensions=allow(Permission.Authenticated),
        description=(
            "Ends every live session of the caller's user except this request's; their tokens stop working at "
            "once. Returns how many ended. Needs a logged-in user."
        ),
    )
    async def logout_other_sessions(self, info: Info) -> int:
        context = info.context
        assert context.session is not None  # Authenticated
        return await context.services.session_management.logout_other_sessions(context.session)
