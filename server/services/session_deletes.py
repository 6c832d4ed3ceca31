"""Deleting sessions in bulk: by a condition, in one statement that returns the token digests it deleted.

Reading the digests first and then deleting `token_hash IN (...)` breaks with many sessions (asyncpg
accepts at most 32,767 arguments in one statement, a standard SQLite build 32,766), and it misses a
session created between the read and the delete (deleted by the condition but never forgotten by the
cache) or leaves it behind (deleted by the list). `DELETE ... WHERE <condition> RETURNING token_hash`
has neither problem: its arguments are the condition's, whatever the number of rows. PostgreSQL runs
it, and SQLite from 3.35 (server/database.py refuses to start on an older one).

Each statement also returns what the events of the ended sessions need (id, user, client address), and
`end_sessions` writes those events in the transaction of the delete (server/services/session_events.py).

The clean job's batches live here too: the expired and idle sessions it selects, and one batch deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pypika_tortoise.context import SqlContext
from pypika_tortoise.dialects import PostgreSQLQueryBuilder, SQLLiteQueryBuilder
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models import Session, SessionEventType, SessionType
from server.cache.base import MAX_REFILL_SECONDS
from server.services.session_events import (
    SessionEventRecord,
    count_guest_endings,
    record_events,
    recording_transaction,
)

#: Anonymous sessions with no active order are cleaned after this long without use.
ANONYMOUS_IDLE_LIMIT = timedelta(days=7)
#: The clean job forgets the cached copies of the expired sessions it deletes only when they expired
#: this recently. A copy never carries a later `expires` than its row (the row's only slides later),
#: and the guard (server/cache/guarded.py) never returns a copy past its `expires`, so the copy of a
#: session long expired is dead whether or not it is forgotten. What a forget still stops is a refill
#: that read the row while it was valid and writes its copy after the delete (with an expiry it slid
#: itself): the guard refuses any refill written later than MAX_REFILL_SECONDS after its lookup, so
#: such a refill read the row at most that long before the delete, when the session had not expired.
#: The margin over MAX_REFILL_SECONDS covers clocks of instances that disagree by minutes.
RECENTLY_EXPIRED = timedelta(seconds=10 * MAX_REFILL_SECONDS)


#: What a delete returns of each session: enough to forget its cached copy and record its end.
_RETURNED = ("id", "token_hash", "user_id", "client_address")


@dataclass(frozen=True, slots=True)
class DeletedSession:
    """A session a delete removed: its id, token digest (its cache key), user (None: a guest) and address."""

    id: int
    token_hash: str
    user_id: int | None
    client_address: str | None


@dataclass(frozen=True, slots=True)
class Ending:
    """Why sessions end, as their events record it: REVOKED or EXPIRED (a reason each) or LOGOUT."""

    type: SessionEventType
    reason: str
    at: datetime
    #: the user who ended them when that is someone else (an administrator)
    actor_id: int | None = None


async def delete_sessions(query: QuerySet[Session], connection: BaseDBAsyncClient) -> list[DeletedSession]:
    """Delete the sessions `query` filters, through `connection`, in one statement; what was deleted."""
    sql, params = deletion(query, connection)
    return [
        DeletedSession(int(row["id"]), str(row["token_hash"]), row["user_id"], row["client_address"])
        for row in await connection.execute_query_dict(sql, params)
    ]


async def end_sessions(
    query: QuerySet[Session], ending: Ending, connection: BaseDBAsyncClient | None = None
) -> list[DeletedSession]:
    """Delete the sessions `query` filters and record their ends, in one transaction: `connection`'s (the
    caller's), else one of its own. The caller forgets their cached copies once it has committed."""
    if connection is None:
        async with recording_transaction(Session._meta.db.connection_name) as own:
            return await end_sessions(query, ending, own)
    deleted = await delete_sessions(query, connection)
    await record_ended(connection, deleted, ending)
    return deleted


async def record_ended(connection: BaseDBAsyncClient, deleted: Sequence[DeletedSession], ending: Ending) -> None:
    """Record the ends of `deleted` sessions through `connection`: a user's stored, a guest's only counted."""
    events = [
        SessionEventRecord(
            type=ending.type,
            at=ending.at,
            session_id=session.id,
            user_id=session.user_id,
            actor_id=ending.actor_id,
            ip_address=session.client_address,
            reason=ending.reason,
        )
        for session in deleted
        if session.user_id is not None
    ]
    count_guest_endings(ending.type, ending.reason, len(deleted) - len(events))
    await record_events(connection, events)


def cache_keys(deleted: Sequence[DeletedSession]) -> list[str]:
    """The cache keys (token digests) of deleted sessions."""
    return [session.token_hash for session in deleted]


def deletion(query: QuerySet[Session], connection: BaseDBAsyncClient) -> tuple[str, list[Any]]:
    """`DELETE ... WHERE <query's condition> RETURNING id, token_hash, ...` in the connection's dialect."""
    delete = query.using_db(connection).delete()
    delete.sql()  # builds `delete.query`, the statement in the connection's dialect
    statement = delete.query
    if not isinstance(statement, PostgreSQLQueryBuilder | SQLLiteQueryBuilder):
        raise TypeError(f"DELETE ... RETURNING needs PostgreSQL or SQLite, not {type(statement).__name__}")
    sql, params = statement.returning(*_RETURNED).get_parameterized_sql()
    return sql, list(params)


def expired_sessions(now: datetime, since: datetime | None = None) -> QuerySet[Session]:
    """Sessions past their expiry (that expired after `since`, when given), oldest first: the first sets
    the clean job removes.

    The order is what keeps the batch on the `expires` index in every plan: without it, PostgreSQL's
    generic plan for the prepared statement (used after five runs) scans the whole table.
    """
    query = Session.filter(expires__lte=now)
    if since is not None:
        query = query.filter(expires__gt=since)
    return query.order_by("expires")


def idle_anonymous_sessions(now: datetime) -> QuerySet[Session]:
    """Unexpired anonymous sessions without an active order, unused for ANONYMOUS_IDLE_LIMIT.

    `expires__gt` keeps this set disjoint from `expired_sessions`: a session fetched by both would
    shorten the batch, and a short batch tells the clean loop that the backlog is drained. Longest
    idle first, along the (type, last_active_at) index, for the same reason as `expired_sessions`.
    """
    return Session.filter(
        type=SessionType.ANONYMOUS,
        active_order_id__isnull=True,
        last_active_at__lt=now - ANONYMOUS_IDLE_LIMIT,
        expires__gt=now,
    ).order_by("last_active_at")


def clean_batch(query: QuerySet[Session], connection: BaseDBAsyncClient, limit: int) -> QuerySet[Session]:
    """The ids of at most `limit` rows of `query`, locked, skipping rows another cleaner holds.

    Not values_list(): Tortoise 1.1 drops FOR UPDATE from it.
    """
    return query.using_db(connection).limit(limit).select_for_update(skip_locked=True).only("id")


def clean_set(query: QuerySet[Session], connection: BaseDBAsyncClient, limit: int) -> QuerySet[Session]:
    """The sessions of `clean_batch`, for one statement to delete them.

    On PostgreSQL `id = ANY(ARRAY(<batch>))`: the batch runs once (an InitPlan) and its rows are then
    reached through the primary key. With `id IN (<batch>)` the generic plan of the prepared statement,
    which expects a third of the table for `expires <= $1`, hash-joins the batch with a sequential scan
    of the whole table (bench/EXPLAIN.md). SQLite looks `id IN (<batch>)` up by rowid.
    """
    batch = clean_batch(query, connection, limit)
    if connection.capabilities.dialect == "postgres":
        return Session.filter(id=_AnyOf(batch))
    return Session.filter(id__in=Subquery(batch))


async def delete_clean_batch(connection: BaseDBAsyncClient, now: datetime, batch_size: int) -> tuple[int, list[str]]:
    """Delete one batch through `connection`: sessions expired before RECENTLY_EXPIRED first, then the
    recently expired ones, then idle anonymous ones to fill it; record their ends (EXPIRED, "expired"
    or "idle"). Returns how many were deleted, and the cache keys the caller must forget once committed:
    those of the recently expired and the idle sessions only (see RECENTLY_EXPIRED).

    Each set goes in one `DELETE ... WHERE id IN (<clean_batch>) RETURNING ...`: the rows are
    selected along their index, locked (on PostgreSQL) and deleted by the same statement, so the batch
    size bounds no argument list. The sets are disjoint, so a batch comes back short only when all
    three are exhausted.
    """
    horizon = now - RECENTLY_EXPIRED
    expired = Ending(SessionEventType.EXPIRED, "expired", now)
    sets = (
        (expired_sessions(horizon), expired, False),
        (expired_sessions(now, since=horizon), expired, True),
        (idle_anonymous_sessions(now), Ending(SessionEventType.EXPIRED, "idle", now), True),
    )
    keys: list[str] = []
    left = batch_size
    for query, ending, forget in sets:
        if left == 0:
            break
        deleted = await delete_sessions(clean_set(query, connection, left), connection)
        await record_ended(connection, deleted, ending)
        if forget:
            keys += cache_keys(deleted)
        left -= len(deleted)
    return batch_size - left, keys


class _AnyOf(Subquery):
    """`ANY(ARRAY(<query>))` (PostgreSQL): equal to any row of a one-column subquery, evaluated once."""

    def get_sql(self, ctx: SqlContext) -> str:
        return f"ANY(ARRAY({super().get_sql(ctx)}))"
