from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.ids import parse_id
from schema.permissions import actor, allow, allow_or_self, has_session
from schema.types import CachedSession
from server.services.errors import EntityNotFoundError, UserInputError
from server.services.text import check_storable

MAX_STRATEGY_NAME_LENGTH = 64
MAX_CLEAN_BATCH_SIZE = 100_000

NEEDS_SESSION = "Needs a session (FORBIDDEN without a valid session token)."


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        extensions=allow(Permission.Public),
        description=(
            "Starts a guest session in this request's channel, with a new random token (256 bits). The token is "
            "returned, and sent as the server's TOKEN_METHOD says: in the session cookie and/or the auth-token "
            "response header. A session the request already had is not ended. Anyone may call."
        ),
    )
    async def create_anonymous_session(self, info: Info) -> CachedSession:
        context = info.context
        session = await context.services.sessions.create_anonymous_session(context.channel.id, context.client)
        context.start_session(session, remember_me=True)
        return session

    @strawberry.mutation(
        extensions=allow(Permission.ImpersonateUser, fresh=True),
        description=(
            "Starts a session for a user, for a backend that authenticated them by its own means. For another "
            "user than the caller it is an impersonation: the session records impersonatorId, takes nothing "
            "from the caller's session, ends at most IMPERSONATION_MAX_LIFETIME after its creation however "
            "active, cannot reauthenticate, and the user sees it in mySessions and may end it. For the caller, "
            "the cart of their session, if it has one, is merged as at login. The new token is returned only: "
            "no cookie or header is sent. Sets the user's lastLogin. Its authenticatedAt is null. Needs "
            "ImpersonateUser and every permission the user holds (FORBIDDEN otherwise), then a password proof "
            "younger than SESSION_FRESH_AGE (FORBIDDEN, extensions.reason FRESH_AUTHENTICATION_REQUIRED)."
        ),
    )
    async def create_new_authenticated_session(
        self,
        info: Info,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="The user (ENTITY_NOT_FOUND if unknown).")],
        authentication_strategy_name: Annotated[
            str,
            strawberry.argument(
                description="How the user was authenticated, 1 to 64 characters; kept as authenticationStrategy."
            ),
        ],
    ) -> CachedSession:
        if not 0 < len(authentication_strategy_name) <= MAX_STRATEGY_NAME_LENGTH:
            raise UserInputError(f"authenticationStrategyName must be 1 to {MAX_STRATEGY_NAME_LENGTH} characters")
        check_storable(authentication_strategy_name, "authenticationStrategyName")
        context = info.context
        assert context.session is not None  # ImpersonateUser
        return await context.services.impersonation.create_session(
            context.request_context, context.session, parse_id(user_id, "User"), authentication_strategy_name
        )

    @strawberry.mutation(
        extensions=has_session(),
        description=(
            "Makes an order the cart of this request's session. The order must be the user's own, or a guest "
            "order this session created or holds (FORBIDDEN otherwise), and still active (BAD_USER_INPUT). "
            + NEEDS_SESSION
        ),
    )
    async def set_active_order(
        self,
        info: Info,
        order_id: Annotated[strawberry.ID, strawberry.argument(description="The order (ENTITY_NOT_FOUND if unknown).")],
    ) -> CachedSession:
        context = info.context
        assert context.session is not None
        context.session = await context.services.orders.set_active_order(context.session, parse_id(order_id, "Order"))
        return context.session

    @strawberry.mutation(
        extensions=has_session(),
        description="Leaves this request's session without a cart; the order itself is kept. " + NEEDS_SESSION,
    )
    async def unset_active_order(self, info: Info) -> CachedSession:
        context = info.context
        assert context.session is not None
        context.session = await context.services.orders.unset_active_order(context.session)
        return context.session

    @strawberry.mutation(
        extensions=has_session(),
        description=(
            "Moves this request's session to another channel. A later request moves it back to the channel it "
            "names in the channel token header (the default channel without one). " + NEEDS_SESSION
        ),
    )
    async def set_active_channel(
        self,
        info: Info,
        channel_id: Annotated[
            strawberry.ID, strawberry.argument(description="The channel (ENTITY_NOT_FOUND if unknown).")
        ],
    ) -> CachedSession:
        context = info.context
        assert context.session is not None
        channel_number = parse_id(channel_id, "Channel")
        channel = await context.services.channels.find_one(channel_number)
        if channel is None:
            raise EntityNotFoundError("Channel", channel_number)
        context.session = await context.services.sessions.set_active_channel(context.session, channel)
        return context.session

    @strawberry.mutation(
        extensions=allow_or_self(Permission.DeleteSession, fresh_for_others=True),
        description=(
            "Ends every session of a user, this request's included when they are the caller's; their tokens stop "
            "working at once. Returns how many ended. Needs DeleteSession, unless the user is the caller, and "
            "then a password proof younger than SESSION_FRESH_AGE (FORBIDDEN, extensions.reason "
            "FRESH_AUTHENTICATION_REQUIRED)."
        ),
    )
    async def delete_sessions_by_user(
        self, info: Info, user_id: Annotated[strawberry.ID, strawberry.argument(description="The user.")]
    ) -> int:
        return await info.context.services.sessions.delete_sessions_by_user(
            parse_id(user_id, "User"), actor(info).user_id
        )

    @strawberry.mutation(
        extensions=allow(Permission.DeleteSession),
        description=(
            "Ends every session whose cart is the order; their tokens stop working at once. Returns how many "
            "ended. Needs DeleteSession."
        ),
    )
    async def delete_sessions_by_active_order_id(
        self, info: Info, active_order_id: Annotated[strawberry.ID, strawberry.argument(description="The order.")]
    ) -> int:
        return await info.context.services.sessions.delete_sessions_by_active_order_id(
            parse_id(active_order_id, "Order"), actor(info).user_id
        )

    @strawberry.mutation(
        extensions=allow(Permission.DeleteSession),
        description=(
            "Removes expired sessions, and guest sessions without a cart unused for 7 days, at most batchSize "
            "of them; returns how many. Call again while it returns batchSize. The server can also run this on "
            "a schedule, or from the command line. Needs DeleteSession."
        ),
    )
    async def clean_expired_sessions(
        self,
        info: Info,
        batch_size: Annotated[
            int, strawberry.argument(description="The most sessions to remove in this call, from 1 to 100000.")
        ] = 1000,
    ) -> int:
        if not 0 < batch_size <= MAX_CLEAN_BATCH_SIZE:
            raise UserInputError(f"batchSize must be from 1 to {MAX_CLEAN_BATCH_SIZE}")
        return await info.context.services.sessions.clean_expired_sessions(batch_size)
