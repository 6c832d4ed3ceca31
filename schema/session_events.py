"""The GraphQL side of the record of what happened to sessions: SessionEventType, SessionEvent,
SessionEventList and the query sessionEvents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from models import Permission, SessionEventType
from schema.context import Info
from schema.derived import object_type
from schema.enums import describe_enum
from schema.permissions import allow
from schema.session_management import Options, optional_id, page_of
from server.services.session_events import SessionEventInfo, list_events
from server.services.session_events import SessionEventList as SessionEventListValue

describe_enum(
    SessionEventType,
    "What happened to a session; the event's reason says more.",
    {
        SessionEventType.LOGIN: (
            'A session was created by login (reason "login") or by createNewAuthenticatedSession for oneself '
            '(reason "api").'
        ),
        SessionEventType.LOGIN_FAILED: (
            'A login was refused: reason "invalid-credentials", "not-verified" or "rate-limited". Stored only '
            "for identifiers that name a user, and a rate-limit refusal at most once per user per rate-limit window."
        ),
        SessionEventType.LOGOUT: (
            "Its owner ended the session: logout, or revokeSession of the session of the request itself."
        ),
        SessionEventType.REVOKED: (
            'The session was ended by someone or something else: reason "revoked-by-owner", "revoked-by-admin", '
            '"user-deleted", "password-changed", "order-deleted" or "session-limit".'
        ),
        SessionEventType.EXPIRED: 'The clean job removed the session: reason "expired" or "idle".',
        SessionEventType.ORDER_MERGED: (
            'A guest order reached the user at login: reason "merged" (into the user\'s active order) or '
            '"adopted" (it became the user\'s active order).'
        ),
        SessionEventType.IMPERSONATION_STARTED: "An administrator (the actor) created a session for another user.",
        SessionEventType.REAUTHENTICATED: "The user proved their password again in this session.",
        SessionEventType.PASSWORD_CHANGED: (
            "The user's password changed, by the user or by an administrator (the actor); the other sessions "
            'ended, each recorded as REVOKED "password-changed".'
        ),
    },
)

if TYPE_CHECKING:  # resolvers return the domain values themselves (see schema/derived.py)
    SessionEvent = SessionEventInfo
    SessionEventList = SessionEventListValue
else:
    SessionEvent = object_type(
        SessionEventInfo,
        name="SessionEvent",
        description=(
            "Something that happened to a session, kept for the server's SESSION_EVENT_RETENTION (30 days unless "
            "configured). Never carries a token or a password."
        ),
        descriptions={
            "id": "The event's id.",
            "at": "When it happened.",
            "type": "What happened.",
            "session_id": "The session it happened to; null for a refused login.",
            "user_id": "The user the session belongs (or was to belong) to.",
            "actor_id": "The user who caused it when that is someone else (an administrator); null otherwise.",
            "ip_address": (
                "The client address of the session (or of the refused login), as SESSION_CLIENT_ADDRESS keeps it; "
                "null when not kept."
            ),
            "reason": (
                'A stable lower-case code saying why, such as "logout", "revoked-by-owner", "revoked-by-admin", '
                '"user-deleted", "password-changed", "order-deleted", "session-limit", "expired", "idle", '
                '"invalid-credentials", "not-verified", "rate-limited", "login" or "api".'
            ),
        },
    )
    SessionEventList = object_type(
        SessionEventListValue,
        description="One page of session events.",
        descriptions={
            "items": "The events of this page, newest first (then by id).",
            "total_items": "How many events match, on every page.",
        },
    )


@strawberry.type(description="Reading what happened to sessions.")
class SessionEventQueries:
    @strawberry.field(
        extensions=allow(Permission.ReadSession),
        description=(
            "What happened to sessions, newest first, kept for the server's SESSION_EVENT_RETENTION; the filters "
            "combine. An unknown user has no events. Needs ReadSession."
        ),
    )
    async def session_events(
        self,
        info: Info,
        user_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only the events of this user's sessions.")
        ] = None,
        type: Annotated[
            SessionEventType | None, strawberry.argument(description="Only the events of this type.")
        ] = None,
        options: Options = None,
    ) -> SessionEventList:
        page = page_of(options)
        user = None
        if user_id is not None:
            user = optional_id(user_id, "User")
            if user is None:
                return SessionEventListValue(items=(), total_items=0)
        return await list_events(user, type, page)
