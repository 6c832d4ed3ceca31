from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.types import LoginResult, Success, login_result
from server.cached_session import CachedSession
from server.services.reauthentication import Reauthenticated


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        extensions=allow(Permission.Public),
        description=(
            "Logs in with an identifier and password: a new session, with a new token, every time. The token is "
            "returned and sent as the server's TOKEN_METHOD says (session cookie and/or auth-token response "
            "header). The cart of the request's guest session, if any, is merged into the user's active order "
            "(for a variant in both, the guest's quantity wins) and the guest sessions holding it end. A refused "
            "login is an ErrorResult, not an error. Attempts are limited per identifier and per client address: "
            "over the limit it fails with FORBIDDEN, extensions.reason RATE_LIMITED and extensions.retryAfter "
            "(seconds), without checking the password. Anyone may call."
        ),
    )
    async def login(
        self,
        info: Info,
        username: Annotated[
            str, strawberry.argument(description="The user's identifier, in any case or Unicode form.")
        ],
        password: Annotated[str, strawberry.argument(description="The user's password.")],
        remember_me: Annotated[
            bool | None,
            strawberry.argument(
                description=(
                    "True: the session cookie lasts as long as the session, across browser restarts. "
                    "Otherwise it is a browser-session cookie. The session's own expiry is the same either way."
                )
            ),
        ] = None,
    ) -> LoginResult:
        context = info.context
        outcome = await context.services.auth.login(
            context.request_context, username, password, remember_me=bool(remember_me)
        )
        if isinstance(outcome, CachedSession):
            context.start_session(outcome, remember_me=bool(remember_me))
        return login_result(outcome)

    @strawberry.mutation(
        extensions=allow(Permission.Authenticated),
        description=(
            "Proves the caller's password again, for the operations that demand a recent proof (FORBIDDEN with "
            "extensions.reason FRESH_AUTHENTICATION_REQUIRED otherwise). The session keeps its id, cart, channel "
            "and expiry, and gets a new token, returned and sent as login sends it; the old token stops working "
            "at once. authenticatedAt becomes now. A refused proof is an ErrorResult, as login's; attempts count "
            "and are limited with login's (FORBIDDEN, extensions.reason RATE_LIMITED). Needs a logged-in user; "
            "FORBIDDEN for a session made for the user by an administrator (impersonatorId set)."
        ),
    )
    async def reauthenticate(
        self, info: Info, password: Annotated[str, strawberry.argument(description="The caller's password.")]
    ) -> LoginResult:
        context = info.context
        assert context.session is not None  # Authenticated
        outcome = await context.services.reauthentication.reauthenticate(
            context.request_context, context.session, password
        )
        if isinstance(outcome, Reauthenticated):
            context.start_session(outcome.session, remember_me=outcome.remember_me)
            return outcome.session
        return login_result(outcome)

    @strawberry.mutation(
        extensions=allow(Permission.Public),
        description=(
            "Ends this request's session: its token stops working at once, and the session cookie is cleared. "
            "success is false when there was no session to end. Anyone may call."
        ),
    )
    async def logout(self, info: Info) -> Success:
        return Success(success=await info.context.log_out())
