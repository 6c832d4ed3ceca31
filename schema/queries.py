from __future__ import annotations

from typing import Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.permissions import allow
from schema.session_events import SessionEventQueries
from schema.session_management import SessionManagementQueries
from schema.types import CachedSession, Channel, Order

#: The token argument of the session look-ups.
Token = Annotated[str, strawberry.argument(description="A session token, as a client presents it.")]


@strawberry.type(description="Reading sessions, carts and channels.")
class Query(SessionManagementQueries, SessionEventQueries):
    @strawberry.field(
        extensions=allow(Permission.Public),
        description=(
            "The session the token names, for a backend that received the token from its client; null when the "
            "token is unknown, expired or ended. Anyone may call. Served from the session cache while its copy "
            "is fresh, else read from the database and cached again; using the session this way slides its expiry."
        ),
    )
    async def session_from_token(self, info: Info, token: Token) -> CachedSession | None:
        return await info.context.services.sessions.get_session_from_token(token)

    @strawberry.field(
        extensions=allow(Permission.Public),
        description=(
            "The session of this request (the token in its cookie or Authorization: Bearer header); null without "
            "a valid one. Anyone may call."
        ),
    )
    def active_session(self, info: Info) -> CachedSession | None:
        return info.context.session

    @strawberry.field(
        extensions=allow(Permission.ReadSession),
        description=(
            "The session the token names, read from the database as it is stored now, bypassing the session "
            "cache (which it leaves as it is) and without sliding its expiry; null when the token is unknown, "
            "expired or ended. Needs ReadSession."
        ),
    )
    async def serialize_session(self, info: Info, token: Token) -> CachedSession | None:
        return await info.context.services.sessions.serialize_stored_session(token)

    @strawberry.field(
        extensions=allow(Permission.Public),
        description=(
            "The cart of this request's session: its active order while that is still active; null without "
            "a session or an active order. Anyone may call."
        ),
    )
    async def active_order(self, info: Info) -> Order | None:
        order = await info.context.services.orders.get_active_order(info.context.session)
        return None if order is None else Order.from_domain(order)

    @strawberry.field(
        extensions=allow(Permission.Public),
        description=(
            "The channel of this request: the one whose token the channel token header names, the default "
            "channel without one (an unknown token is refused with HTTP 400). Anyone may call."
        ),
    )
    def active_channel(self, info: Info) -> Channel:
        return Channel.from_domain(info.context.channel)
