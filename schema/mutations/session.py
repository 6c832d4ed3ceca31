from __future__ import annotations

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


@strawberry.type
class SessionMutations:
    @strawberry.mutation(extensions=allow(Permission.Public))
    async def create_anonymous_session(self, info: Info) -> CachedSession:
        context = info.context
        session = await context.services.sessions.create_anonymous_session(context.channel.id)
        context.start_session(session, remember_me=True)
        return session

    @strawberry.mutation(extensions=allow(Permission.ImpersonateUser))
    async def create_new_authenticated_session(
        self, info: Info, user_id: strawberry.ID, authentication_strategy_name: str
    ) -> CachedSession:
        if not 0 < len(authentication_strategy_name) <= MAX_STRATEGY_NAME_LENGTH:
            raise UserInputError(f"authenticationStrategyName must be 1 to {MAX_STRATEGY_NAME_LENGTH} characters")
        check_storable(authentication_strategy_name, "authenticationStrategyName")
        services = info.context.services
        # Acting as a user is holding what they hold: only users within the caller's own permissions.
        user = await services.users.find_manageable(parse_id(user_id, "User"), actor=actor(info))
        return await services.sessions.create_new_authenticated_session(
            info.context.request_context, user, authentication_strategy_name
        )

    @strawberry.mutation(extensions=has_session())
    async def set_active_order(self, info: Info, order_id: strawberry.ID) -> CachedSession:
        context = info.context
        assert context.session is not None
        context.session = await context.services.orders.set_active_order(context.session, parse_id(order_id, "Order"))
        return context.session

    @strawberry.mutation(extensions=has_session())
    async def unset_active_order(self, info: Info) -> CachedSession:
        context = info.context
        assert context.session is not None
        context.session = await context.services.orders.unset_active_order(context.session)
        return context.session

    @strawberry.mutation(extensions=has_session())
    async def set_active_channel(self, info: Info, channel_id: strawberry.ID) -> CachedSession:
        context = info.context
        assert context.session is not None
        channel_number = parse_id(channel_id, "Channel")
        channel = await context.services.channels.find_one(channel_number)
        if channel is None:
            raise EntityNotFoundError("Channel", channel_number)
        context.session = await context.services.sessions.set_active_channel(context.session, channel)
        return context.session

    @strawberry.mutation(extensions=allow_or_self(Permission.DeleteSession))
    async def delete_sessions_by_user(self, info: Info, user_id: strawberry.ID) -> int:
        return await info.context.services.sessions.delete_sessions_by_user(parse_id(user_id, "User"))

    @strawberry.mutation(extensions=allow(Permission.DeleteSession))
    async def delete_sessions_by_active_order_id(self, info: Info, active_order_id: strawberry.ID) -> int:
        return await info.context.services.sessions.delete_sessions_by_active_order_id(
            parse_id(active_order_id, "Order")
        )

    @strawberry.mutation(extensions=allow(Permission.DeleteSession))
    async def clean_expired_sessions(self, info: Info, batch_size: int = 1000) -> int:
        if not 0 < batch_size <= MAX_CLEAN_BATCH_SIZE:
            raise UserInputError(f"batchSize must be from 1 to {MAX_CLEAN_BATCH_SIZE}")
        return await info.context.services.sessions.clean_expired_sessions(batch_size)
