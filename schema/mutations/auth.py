from __future__ import annotations

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.types import LoginResult, Success, login_result
from server.cached_session import CachedSession


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        extensions=allow(Permission.Public),
        description=(
            "Native username/password login; a new session (and token) every time. Attempts are limited per "
            "identifier and per client address: over the limit it fails with FORBIDDEN, extensions.reason "
            "RATE_LIMITED and extensions.retryAfter (seconds), without checking the password."
        ),
    )
    async def login(self, info: Info, username: str, password: str, remember_me: bool | None = None) -> LoginResult:
        context = info.context
        outcome = await context.services.auth.login(
            context.request_context, username, password, remember_me=bool(remember_me)
        )
        if isinstance(outcome, CachedSession):
            context.start_session(outcome, remember_me=bool(remember_me))
        return login_result(outcome)

    @strawberry.mutation(extensions=allow(Permission.Public))
    async def logout(self, info: Info) -> Success:
        context = info.context
        session = context.session
        deleted = session is not None and await context.services.sessions.delete_session(session)
        context.end_session()
        return Success(success=deleted)
