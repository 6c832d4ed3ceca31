"""What a new authenticated session writes besides itself, in its creating transaction: its event (LOGIN, or
IMPERSONATION_STARTED), the guest order merged into it (ORDER_MERGED), and the end of the user's oldest
sessions beyond SESSION_LIMIT_PER_USER (REVOKED "session-limit"), so a stolen password cannot mint
unbounded sessions.

The caller holds the user row locked (lock_for_login), so concurrent logins of one user count their
sessions one after the other and never keep more than the limit between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Subquery

from models import Session, SessionEventType
from server.database import parameters
from server.services.session_deletes import DeletedSession, Ending, end_sessions
from server.services.session_events import SessionEventRecord, record_events


@dataclass(frozen=True, slots=True)
class SessionStart:
    """How a new authenticated session is recorded."""

    type: SessionEventType = SessionEventType.LOGIN
    reason: str | None = "login"
    #: the administrator who created it for the user (IMPERSONATION_STARTED)
    actor_id: int | None = None


#: login with a password
LOGIN = SessionStart()
#: createNewAuthenticatedSession for oneself
API_LOGIN = SessionStart(reason="api")


async def record_session_start(
    connection: BaseDBAsyncClient,
    session_id: int,
    client_address: str | None,
    user_id: int,
    start: SessionStart,
    merged: str | None,
    limit: int,
    now: datetime,
) -> list[DeletedSession]:
    """Record the start of session `session_id`, new for `user_id` from `client_address` (and the guest
    order `merged` into it, when one was) and the user's last login, then end the user's oldest live
    sessions beyond `limit`; the sessions ended, whose cached copies the caller forgets after the commit."""
    await _record_last_login(connection, user_id, now)
    events = [_event(session_id, client_address, user_id, start.type, start.reason, start.actor_id, now)]
    if merged is not None:
        merge = SessionEventType.ORDER_MERGED
        events.append(_event(session_id, client_address, user_id, merge, merged, start.actor_id, now))
    await record_events(connection, events)
    return await end_sessions_over_limit(connection, user_id, limit, now)


async def _record_last_login(connection: BaseDBAsyncClient, user_id: int, now: datetime) -> None:
    statement = "UPDATE users SET last_login = {} WHERE id = {}".format(*parameters(connection.capabilities.dialect, 2))
    await connection.execute_query(statement, [now, user_id])


async def end_sessions_over_limit(
    connection: BaseDBAsyncClient, user_id: int, limit: int, now: datetime
) -> list[DeletedSession]:
    """End the user's own live sessions beyond the `limit` newest (by creation, then id), in one statement.
    Impersonations neither count nor end here: the customer's own devices are never signed out by a
    support desk's visit, which IMPERSONATION_MAX_LIFETIME bounds anyway."""
    if await _live_own_sessions(connection, user_id, now) <= limit:
        return []
    live = Session.filter(user_id=user_id, impersonator_id=None, invalidated=False, expires__gt=now)
    newest = live.order_by("-created_at", "-id").limit(limit).values("id")
    over_limit = live.exclude(id__in=Subquery(newest))
    return await end_sessions(over_limit, Ending(SessionEventType.REVOKED, "session-limit", now), connection)


#: The user's own live sessions, counted first: a login rarely passes the limit, and the statement that
#: ends sessions beyond it costs the event loop far more to build than this one to run.
_LIVE_OWN_SESSIONS = (
    "SELECT count(*) FROM sessions WHERE user_id = {} AND impersonator_id IS NULL AND NOT invalidated AND expires > {}"
)
_COUNT_STATEMENTS = {dialect: _LIVE_OWN_SESSIONS.format(*parameters(dialect, 2)) for dialect in ("postgres", "sqlite")}


async def _live_own_sessions(connection: BaseDBAsyncClient, user_id: int, now: datetime) -> int:
    rows = (await connection.execute_query(_COUNT_STATEMENTS[connection.capabilities.dialect], [user_id, now]))[1]
    return int(rows[0][0])


def _event(
    session_id: int,
    client_address: str | None,
    user_id: int,
    type: SessionEventType,
    reason: str | None,
    actor_id: int | None,
    now: datetime,
) -> SessionEventRecord:
    return SessionEventRecord(
        type=type,
        at=now,
        session_id=session_id,
        user_id=user_id,
        actor_id=actor_id,
        ip_address=client_address,
        reason=reason,
    )


def recorded_start(start: SessionStart | None, impersonator_id: int | None, proved: bool) -> SessionStart:
    """`start` when given, else: IMPERSONATION_STARTED by the impersonator for a session made for another
    user (never LOGIN), LOGIN "login" after a password was proved, LOGIN "api" for createNewAuthenticatedSession."""
    if start is not None:
        return start
    if impersonator_id is not None:
        return SessionStart(SessionEventType.IMPERSONATION_STARTED, "impersonation", impersonator_id)
    return LOGIN if proved else API_LOGIN
