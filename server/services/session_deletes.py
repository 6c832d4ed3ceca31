"""Deleting sessions in bulk: by a condition, in one statement that returns the token digests it deleted.

Reading the digests first and then deleting `token_hash IN (...)` breaks with many sessions (asyncpg
accepts at most 32,767 arguments in one statement, a standard SQLite build 32,766), and it misses a
session created between the read and the delete (deleted by the condition but never forgotten by the
cache) or leaves it behind (deleted by the list). `DELETE ... WHERE <condition> RETURNING token_hash`
has neither problem: its arguments are the condition's, whatever the number of rows. PostgreSQL runs
it, and SQLite from 3.35 (server/database.py refuses to start on an older one).

The clean job's batches live here too: the expired and idle sessions it selects, and one batch deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pypika_tortoise.context import SqlContext
from pypika_tortoise.dialects import PostgreSQLQueryBuilder, SQLLiteQueryBuilder
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models import Session, SessionType

#: Anonymous sessions with no active order are cleaned after this long without use.
ANONYMOUS_IDLE_LIMIT = timedelta(days=7)


async def delete_sessions(query: QuerySet[Session], connection: BaseDBAsyncClient) -> list[str]:
    """Delete the sessions `query` filters, through `connection`, in one statement; their token digests."""
    sql, params = deletion(query, connection)
    return [str(row["token_hash"]) for row in await connection.execute_query_dict(sql, params)]


def deletion(query: QuerySet[Session], connection: BaseDBAsyncClient) -> tuple[str, list[Any]]:
    """`DELETE ... WHERE <query's condition> RETURNING token_hash` in the connection's dialect: (sql, params)."""
    delete = query.using_db(connection).delete()
    delete.sql()  # builds `delete.query`, the statement in the connection's dialect
    statement = delete.query
    if not isinstance(statement, PostgreSQLQueryBuilder | SQLLiteQueryBuilder):
        raise TypeError(f"DELETE ... RETURNING needs PostgreSQL or SQLite, not {type(statement).__name__}")
    sql, params = statement.returning("token_hash").get_parameterized_sql()
    return sql, list(params)


def expired_sessions(now: datetime) -> QuerySet[Session]:
    """Sessions past their expiry, oldest first: the first set the clean job removes.

    The order is what keeps the batch on the `expires` index in every plan: without it, PostgreSQL's
    generic plan for the prepared statement (used after five runs) scans the whole table.
    """
    return Session.filter(expires__lte=now).order_by("expires")


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


async def delete_clean_batch(connection: BaseDBAsyncClient, now: datetime, batch_size: int) -> list[str]:
    """Delete one batch through `connection`, expired sessions first, then idle anonymous ones to fill it;
    the token digests of the sessions deleted.

    Each set goes in one `DELETE ... WHERE id IN (<clean_batch>) RETURNING token_hash`: the rows are
    selected along their index, locked (on PostgreSQL) and deleted by the same statement, so the batch
    size bounds no argument list.
    """
    keys = await delete_sessions(clean_set(expired_sessions(now), connection, batch_size), connection)
    if len(keys) < batch_size:
        idle = clean_set(idle_anonymous_sessions(now), connection, batch_size - len(keys))
        keys += await delete_sessions(idle, connection)
    return keys


class _AnyOf(Subquery):
    """`ANY(ARRAY(<query>))` (PostgreSQL): equal to any row of a one-column subquery, evaluated once."""

    def get_sql(self, ctx: SqlContext) -> str:
        return f"ANY(ARRAY({super().get_sql(ctx)}))"
