"""Sessions as their owners and administrators see them: listing a user's live sessions, and ending them.

Only live sessions are listed, counted and ended (not ended, not expired, within SESSION_MAX_LIFETIME):
an expired row waiting for the clean job is gone as far as anyone can tell. Ending goes through the
SessionService's delete paths (one `DELETE ... RETURNING` by condition, then `forget_cached`), so the
cached copies are dropped on every instance and the metrics count each one. A session the caller may
not act on is never matched by the condition, so it is answered exactly as an id that names nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from tortoise.queryset import QuerySet

from models import Session, SessionEventType, SessionType
from server.cached_session import CachedSession
from server.services.client_info import device_label
from server.services.errors import FreshAuthenticationRequiredError, UserInputError
from server.services.session import SessionService
from server.services.session_deletes import Ending, cache_keys, end_sessions
from server.settings import Settings

#: Bounds of SessionListOptions.take, and the page given when none is asked for.
MAX_TAKE = 100
DEFAULT_SKIP = 0
DEFAULT_TAKE = 20
_COLUMNS = (
    "id",
    "type",
    "created_at",
    "seen_at",
    "last_active_at",
    "authenticated_at",
    "expires",
    "client_address",
    "user_agent",
    "active_order_id",
    "active_channel_id",
    "impersonator_id",
)


class SessionKind(Enum):
    """Whether a session is a guest's or a logged-in user's (the GraphQL names are the member names)."""

    ANONYMOUS = SessionType.ANONYMOUS.value
    AUTHENTICATED = SessionType.AUTHENTICATED.value


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session as its owner or an administrator sees it; never its token."""

    id: int
    kind: SessionKind
    current: bool
    created_at: datetime
    last_active_at: datetime
    authenticated_at: datetime | None
    expires: datetime
    ip_address: str | None
    user_agent: str | None
    device: str | None
    active_order_id: int | None
    active_channel_id: int | None
    impersonator_id: int | None


@dataclass(frozen=True, slots=True)
class SessionInfoList:
    """One page of sessions, most recently active first, and how many there are in all."""

    items: tuple[SessionInfo, ...]
    total_items: int


@dataclass(frozen=True, slots=True)
class Page:
    """`take` sessions after the first `skip`."""

    skip: int = DEFAULT_SKIP
    take: int = DEFAULT_TAKE

    @classmethod
    def of(cls, skip: int | None, take: int | None) -> Page:
        """The page asked for (None: the default); BAD_USER_INPUT out of bounds."""
        page = cls(DEFAULT_SKIP if skip is None else skip, DEFAULT_TAKE if take is None else take)
        if page.skip < 0:
            raise UserInputError("skip must be 0 or more")
        if not 1 <= page.take <= MAX_TAKE:
            raise UserInputError(f"take must be from 1 to {MAX_TAKE}")
        return page


class Revoked(Enum):
    """What revoke_session ended."""

    NOTHING = "nothing"
    #: the caller's own session of this request: the caller logs it out (and clears its cookie)
    CURRENT = "current"
    OTHER = "other"


class SessionManagement:
    """List and end the sessions of a user; who may act on whom is the caller's to decide (see the schema)."""

    def __init__(self, sessions: SessionService, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._clock = clock
        lifetime = settings.session_max_lifetime
        self._max_lifetime = None if lifetime is None else timedelta(seconds=lifetime)

    async def list_sessions(self, user_id: int, page: Page, current: CachedSession | None) -> SessionInfoList:
        """The user's live sessions, ordered by last activity, then creation, then id, all descending."""
        query = self._live().filter(user_id=user_id)
        total = await query.count()
        if total <= page.skip:
            return SessionInfoList(items=(), total_items=total)
        rows = (
            await query.order_by("-seen_at", "-created_at", "-id").offset(page.skip).limit(page.take).values(*_COLUMNS)
        )
        current_id = None if current is None else current.id
        return SessionInfoList(items=tuple(self._info(row, current_id) for row in rows), total_items=total)

    async def revoke_session(
        self, session_id: int, caller: CachedSession, owner_id: int | None, fresh_proof: bool = False
    ) -> Revoked:
        """End the live session `session_id`: any session when `owner_id` is None, else only one of that
        user's. The caller's own current session is left to the caller (Revoked.CURRENT) to log out.
        Ending a session not the caller's user's demands a `fresh_proof` (FRESH_AUTHENTICATION_REQUIRED)."""
        query = self._live().filter(id=session_id)
        if owner_id is not None:
            query = query.filter(user_id=owner_id)
        found = await query.limit(1).values("user_id")
        if not found:
            return Revoked.NOTHING
        if session_id == caller.id:
            return Revoked.CURRENT
        own = caller.user is not None and found[0]["user_id"] == caller.user.id
        if not own and not fresh_proof:
            raise FreshAuthenticationRequiredError()
        actor_id = None if own or caller.user is None else caller.user.id
        ending = Ending(
            SessionEventType.REVOKED, "revoked-by-owner" if own else "revoked-by-admin", self._now(), actor_id
        )
        keys = cache_keys(await end_sessions(query, ending))
        await self._sessions.forget_cached(keys, "revoked_by_owner" if own else "revoked_by_admin")
        return Revoked.OTHER if keys else Revoked.NOTHING

    async def logout_other_sessions(self, caller: CachedSession) -> int:
        """End every live session of the caller's user but the caller's own; how many ended."""
        if caller.user is None:
            return 0
        query = self._live().filter(user_id=caller.user.id).exclude(id=caller.id)
        keys = cache_keys(await end_sessions(query, Ending(SessionEventType.REVOKED, "revoked-by-owner", self._now())))
        await self._sessions.forget_cached(keys, "revoked_by_owner")
        return len(keys)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _live(self) -> QuerySet[Session]:
        now = self._now()
        query = Session.filter(invalidated=False, expires__gt=now)
        if self._max_lifetime is not None:
            query = query.filter(created_at__gt=now - self._max_lifetime)
        return query

    def _info(self, row: dict[str, Any], current_id: int | None) -> SessionInfo:
        expires: datetime = row["expires"]
        if self._max_lifetime is not None:
            expires = min(expires, row["created_at"] + self._max_lifetime)
        return SessionInfo(
            id=row["id"],
            kind=SessionKind(SessionType(row["type"]).value),
            current=row["id"] == current_id,
            created_at=row["created_at"],
            last_active_at=row["seen_at"] or row["last_active_at"],
            authenticated_at=row["authenticated_at"],
            expires=expires,
            ip_address=row["client_address"],
            user_agent=row["user_agent"],
            device=device_label(row["user_agent"]),
            active_order_id=row["active_order_id"],
            active_channel_id=row["active_channel_id"],
            impersonator_id=row["impersonator_id"],
        )
