from __future__ import annotations

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.types import CachedSession, Channel, Order


@strawberry.type
class Query:
    @strawberry.field(extensions=allow(Permission.Public))
    async def session_from_token(self, info: Info, token: str) -> CachedSession | None:
        return await info.context.services.sessions.get_session_from_token(token)

    @strawberry.field(extensions=allow(Permission.Public))
    def active_session(self, info: Info) -> CachedSession | None:
        return info.context.session

    @strawberry.field(extensions=allow(Permission.ReadSession))
    async def serialize_session(self, info: Info, token: str) -> CachedSession | None:
        return await info.context.services.sessions.serialize_stored_session(token)

    @strawberry.field(extensions=allow(Permission.Public))
    async def active_order(self, info: Info) -> Order | None:
        order = await info.context.services.orders.get_active_order(info.context.session)
        return None if order is None else Order.from_domain(order)

    @strawberry.field(extensions=allow(Permission.Public))
    def active_channel(self, info: Info) -> Channel:
        return Channel.from_domain(info.context.channel)
