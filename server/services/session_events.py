"""The record of what happened to sessions: events written in the transaction of the change they record,
one structured log line each, and read back newest first.

What is stored is bounded by who can cause it. Events anyone can cause without an account are
counted in metrics instead of stored: anonymous sessions created, expired or revoked, and failed logins
naming no user (random identifiers would otherwise fill the table). A refusal by the login limiter is
stored once per identifier per rate-limit window (see server/services/login_events.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models import SessionEvent, SessionEventType
from server.metrics import record_session_events_unstored

if TYPE_CHECKING:  # session_management imports the session service, which records events through this module
    from server.services.session_management import Page

__all__ = [
    "SessionEventInfo",
    "SessionEventList",
    "SessionEventRecord",
    "SessionEventType",
    "count_guest_endings",
    "list_events",
    "record_events",
    "recording_transaction",
]

logger = logging.getLogger("server.session_events")
#: The log lines of the events recorded in the recording_transaction this task is in, held until it commits.
_unlogged: ContextVar[list[str] | None] = ContextVar("unlogged_session_events", default=None)


@dataclass(frozen=True, slots=True)
class SessionEventRecord:
    """One event to store: what happened, when, to which session and user, caused by whom, from where, why."""

    type: SessionEventType
    at: datetime
    session_id: int | None = None
    user_id: int | None = None
    #: the user who caused it when that is someone else (an administrator)
    actor_id: int | None = None
    #: the client address, already as SESSION_CLIENT_ADDRESS keeps it
    ip_address: str | None = None
    #: a stable lower-case code: "logout", "revoked-by-owner", "expired", "rate-limited", "api"...
    reason: str | None = None


async def record_events(connection: BaseDBAsyncClient, events: Sequence[SessionEventRecord]) -> None:
    """Insert the rows on `connection` (the transaction of the change they record), in one statement
    (`_insert`), and emit one structured log line per event (logger "server.session_events"): once the transaction
    commits when it is a recording_transaction, at once otherwise."""
    if not events:
        return
    await _insert(connection, events)
    if logger.isEnabledFor(logging.INFO):
        unlogged = _unlogged.get()
        for event in events:
            if unlogged is None:
                logger.info(log_line(event))
            else:
                unlogged.append(log_line(event))


@asynccontextmanager
async def recording_transaction(connection_name: str | None = None) -> AsyncIterator[BaseDBAsyncClient]:
    """`in_transaction`, with the log lines of the events recorded in it written once it has committed:
    none for a change that rolled back, as no row is. Nested, the outermost one's commit counts."""
    if _unlogged.get() is not None:
        async with in_transaction(connection_name) as connection:
            yield connection
        return
    lines: list[str] = []
    reset = _unlogged.set(lines)
    try:
        async with in_transaction(connection_name) as connection:
            yield connection
    finally:
        _unlogged.reset(reset)
    for line in lines:
        logger.info(line)


def count_guest_endings(event_type: SessionEventType, reason: str, count: int) -> None:
    """Count the ends of `count` guest sessions, which are not stored: a guest's are counted in metrics
    only, so that the clean job's millions of expired guest sessions (or a flood of guest sessions
    ended) add no rows."""
    if count:
        record_session_events_unstored(event_type.value, reason, count)


def log_line(event: SessionEventRecord) -> str:
    """The event as `key=value` pairs (every value a number, an address, an ISO date or a fixed code)."""
    pairs = [f"event={event.type.value}", f"at={event.at.isoformat()}"]
    for key, value in (
        ("session_id", event.session_id),
        ("user_id", event.user_id),
        ("actor_id", event.actor_id),
        ("ip", event.ip_address),
        ("reason", event.reason),
    ):
        if value is not None:
            pairs.append(f"{key}={value}")
    return " ".join(pairs)


async def _insert(connection: BaseDBAsyncClient, events: Sequence[SessionEventRecord]) -> None:
    """The rows as plain values, not model objects (the clean job writes hundreds of thousands): on
    PostgreSQL one statement with an array per column, on SQLite one prepared INSERT run per row."""
    rows = [
        (event.at, event.type.value, event.session_id, event.user_id, event.actor_id, event.ip_address, event.reason)
        for event in events
    ]
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query(_INSERT_UNNEST, [list(column) for column in zip(*rows, strict=True)])
    else:
        await connection.execute_many(_INSERT_ROW, [list(row) for row in rows])


#: The stored columns, in the order of `_insert`'s rows (`id` comes from the sequence).
_COLUMNS = '"at","type","session_id","user_id","actor_id","ip_address","reason"'
_INSERT_UNNEST = (
    f'INSERT INTO "session_events" ({_COLUMNS}) SELECT * FROM unnest('
    "$1::timestamptz[],$2::varchar[],$3::int[],$4::int[],$5::int[],$6::varchar[],$7::varchar[])"
)
_INSERT_ROW = f'INSERT INTO "session_events" ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)'


@dataclass(frozen=True, slots=True)
class SessionEventInfo:
    """One stored event, as an administrator reads it."""

    id: int
    at: datetime
    type: SessionEventType
    session_id: int | None
    user_id: int | None
    actor_id: int | None
    ip_address: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class SessionEventList:
    """One page of events, newest first, and how many match in all."""

    items: tuple[SessionEventInfo, ...]
    total_items: int


async def list_events(user_id: int | None, type: SessionEventType | None, page: Page) -> SessionEventList:
    """The stored events of `user_id` and of `type` (None: any; the filters combine), newest first (by
    time, then id); an unknown user has none."""
    query = SessionEvent.all()
    if user_id is not None:
        query = query.filter(user_id=user_id)
    if type is not None:
        query = query.filter(type=type)
    total = await query.count()
    if total <= page.skip:
        return SessionEventList(items=(), total_items=total)
    rows = await query.order_by("-at", "-id").offset(page.skip).limit(page.take)
    return SessionEventList(items=tuple(_info(row) for row in rows), total_items=total)


def _info(row: SessionEvent) -> SessionEventInfo:
    return SessionEventInfo(
        id=row.id,
        at=row.at,
        type=SessionEventType(row.type),
        session_id=row.session_id,
        user_id=row.user_id,
        actor_id=row.actor_id,
        ip_address=row.ip_address,
        reason=row.reason,
    )
