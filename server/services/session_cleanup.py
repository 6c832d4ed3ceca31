"""The clean job: expired sessions, and idle anonymous ones without an order, removed in batches from
the database (their ends recorded as EXPIRED events), and events older than SESSION_EVENT_RETENTION
removed in batches. Run by the SessionService's method, the CLI and the scheduler.

The cache is told only of the deletes it must know of: idle sessions (unexpired) and sessions that
expired within RECENTLY_EXPIRED (server/services/session_deletes.py). A copy of a session expired
longer ago is already refused by the guard, forgotten or not; so a backlog of a million expired
sessions costs no cache call, and a slow cache cannot turn the clean into a cache outage.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Subquery

from models import Session, SessionEvent
from server.cache import GuardedSessionCache
from server.metrics import record_clean_removed
from server.services.session_deletes import delete_clean_batch
from server.services.session_events import recording_transaction


class SessionCleaner:
    def __init__(
        self, cache: GuardedSessionCache, clock: Callable[[], float], event_retention: float | None = None
    ) -> None:
        """`event_retention`: seconds events are kept (None: the clean job leaves events alone)."""
        self._cache = cache
        self._clock = clock
        self._event_retention = None if event_retention is None else timedelta(seconds=event_retention)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        """Delete at most `batch_size` expired sessions and idle anonymous ones without an order, and at
        most `batch_size` events past their retention; how many sessions were deleted."""
        return (await self._clean(batch_size))[0]

    async def drain_expired_sessions(self, batch_size: int = 1000) -> int:
        """Clean batches until both sessions and events come back short, so the whole backlog is removed;
        the total of sessions removed."""
        total = 0
        while True:
            sessions, events = await self._clean(batch_size)
            total += sessions
            if sessions < batch_size and events < batch_size:
                return total

    async def _clean(self, batch_size: int) -> tuple[int, int]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        sessions = await self._clean_sessions(now, batch_size)
        events = 0 if self._event_retention is None else await self.delete_old_events(now, batch_size)
        return sessions, events

    async def _clean_sessions(self, now: datetime, batch_size: int) -> int:
        """One batch of sessions, deleted with their EXPIRED events in one transaction.

        Safe to run from several processes at once on PostgreSQL: the batch is selected `FOR UPDATE
        SKIP LOCKED` and deleted by the same statement, so concurrent cleaners take disjoint batches,
        never wait on each other and never delete (or count) a session twice. Any batch size works: no
        statement lists the batch's rows (see `delete_clean_batch`). On SQLite the transaction's first
        statement is the DELETE, a write: it waits for the write lock (busy timeout) like a plain
        statement, rather than failing as a transaction that read first and then writes would.
        """
        async with recording_transaction(Session._meta.db.connection_name) as connection:
            removed, keys = await delete_clean_batch(connection, now, batch_size)
        # After the commit: every key is of a session gone from the database. Only the few sessions
        # whose copies could still be used are forgotten (see RECENTLY_EXPIRED in session_deletes).
        await self._cache.forget(keys)
        record_clean_removed(removed)
        return removed

    async def delete_old_events(self, now: datetime, batch_size: int) -> int:
        """Delete at most `batch_size` of the oldest events recorded before the retention period; how many.

        Ids selected along the (at) index, then deleted by id in the same statement: the batch bounds
        the work of each statement whatever the backlog."""
        assert self._event_retention is not None
        oldest = SessionEvent.filter(at__lt=now - self._event_retention).order_by("at").limit(batch_size)
        return await SessionEvent.filter(id__in=Subquery(oldest.values("id"))).delete()
