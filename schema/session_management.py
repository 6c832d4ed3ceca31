"""The GraphQL side of session management: SessionKind, SessionInfo, SessionInfoList, SessionListOptions,
and the queries mySessions and sessionsOfUser (the mutations are in schema/mutations/session_management.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from models import Permission
from schema.context import Info
from schema.derived import object_type
from schema.enums import describe_enum
from schema.ids import parse_id
from schema.permissions import allow
from server.services.errors import EntityNotFoundError
from server.services.session_management import DEFAULT_SKIP, DEFAULT_TAKE, MAX_TAKE, Page, SessionKind
from server.services.session_management import SessionInfo as SessionInfoValue
from server.services.session_management import SessionInfoList as SessionInfoListValue

describe_enum(
    SessionKind,
    "Whether a session is a guest's or a logged-in user's.",
    {
        SessionKind.ANONYMOUS: "A guest session, without a user.",
        SessionKind.AUTHENTICATED: "A logged-in user's session.",
    },
)

if TYPE_CHECKING:  # resolvers return the domain values themselves (see schema/derived.py)
    SessionInfo = SessionInfoValue
    SessionInfoList = SessionInfoListValue
else:
    SessionInfo = object_type(
        SessionInfoValue,
        description=(
            "One live session as its user or an administrator sees it: where and when it was used. It never "
            "carries the token."
        ),
        descriptions={
            "id": "The session's id, the same as CachedSession.id; give it to revokeSession to end the session.",
            "kind": "Whether it is a guest's or a logged-in user's session.",
            "current": "True for the session this request presents (its cookie or bearer token).",
            "created_at": "When the session was created.",
            "last_active_at": (
                "When a request presenting the session's token as its own credential (cookie or bearer) was last "
                "served, to within the server's SESSION_ACTIVITY_RESOLUTION (5 minutes unless configured). "
                "Lookups by sessionFromToken do not count."
            ),
            "authenticated_at": (
                "When the user last proved their password in this session (login, reauthenticate); null for a "
                "guest session and for one made by createNewAuthenticatedSession."
            ),
            "expires": (
                "When the session ends unless it is used again (or at the server's maximum lifetime, or "
                "IMPERSONATION_MAX_LIFETIME after its creation for an impersonation)."
            ),
            "ip_address": (
                "The client address of the request that created the session or last refreshed its activity. "
                "With SESSION_CLIENT_ADDRESS=truncated (the default) only its network is kept (the /24 of an "
                "IPv4 address, the /48 of an IPv6 one, written as its first address); null when addresses "
                "are not kept."
            ),
            "user_agent": (
                "The User-Agent header of that request, cut to SESSION_USER_AGENT_MAX characters (256 unless "
                "configured); null when it sent none."
            ),
            "device": (
                'A readable label derived from the user agent, such as "Firefox 133 on Linux"; null when '
                "nothing in it is recognised."
            ),
            "active_order_id": "The id of the session's cart; null when it has none.",
            "active_channel_id": "The id of the channel the session works in.",
            "impersonator_id": "The administrator who created this session for its user; null otherwise.",
        },
    )
    SessionInfoList = object_type(
        SessionInfoListValue,
        description="One page of sessions.",
        descriptions={
            "items": "The sessions of this page: the most recently active first, then the newest, then by id.",
            "total_items": "How many live sessions there are in all, on every page.",
        },
    )


@strawberry.input(description="Which page of a list to return.")
class SessionListOptions:
    skip: int | None = strawberry.field(
        default=DEFAULT_SKIP, description="How many items to pass over first: 0 or more."
    )
    take: int | None = strawberry.field(
        default=DEFAULT_TAKE,
        description=f"How many items to return at most: 1 to {MAX_TAKE} (BAD_USER_INPUT otherwise).",
    )


Options = Annotated[
    SessionListOptions | None,
    strawberry.argument(description="The page to return; 20 items from the first when omitted."),
]


def page_of(options: SessionListOptions | None) -> Page:
    """The page `options` asks for; BAD_USER_INPUT out of bounds."""
    return Page() if options is None else Page.of(options.skip, options.take)


def optional_id(value: str, entity: str) -> int | None:
    """The integer id in `value`, None when it is out of range (names nothing); BAD_USER_INPUT when malformed."""
    try:
        return parse_id(value, entity)
    except EntityNotFoundError:
        return None


@strawberry.type(description="Reading sessions as their users and administrators see them.")
class SessionManagementQueries:
    @strawberry.field(
        extensions=allow(Permission.Authenticated),
        description=(
            "The caller's own live sessions, on every device, this request's included (current is true for it). "
            "Needs a logged-in user."
        ),
    )
    async def my_sessions(self, info: Info, options: Options = None) -> SessionInfoList:
        context = info.context
        session = context.session
        assert session is not None and session.user is not None  # Authenticated
        return await context.services.session_management.list_sessions(session.user.id, page_of(options), session)

    @strawberry.field(
        extensions=allow(Permission.ReadSession),
        description="A user's live sessions; an empty list for an unknown user. Needs ReadSession.",
    )
    async def sessions_of_user(
        self,
        info: Info,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="The user whose sessions to list.")],
        options: Options = None,
    ) -> SessionInfoList:
        context = info.context
        page = page_of(options)
        user = optional_id(user_id, "User")
        if user is None:
            return SessionInfoListValue(items=(), total_items=0)
        return await context.services.session_management.list_sessions(user, page, context.session)
