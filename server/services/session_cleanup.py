"""The clean job: expired sessions, and idle anonymous ones without an order, removed in batches from
the database and the cache. Run by the SessionService's method, the CLI and the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from models import Session
from server.cache import GuardedSessionCache
from server.metrics import record_clean_removed
from server.services.session_deletes import delete_clean_batch


class SessionCleaner:
    def __init__(self, cache: GuardedSessionCache, clock: Callable[[], float]) -> None:
        self._cache = cache
        self._clock = clock

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        """Delete at most `batch_size` expired sessions and idle anonymous ones without an order.

        Safe to run from several processes at once on PostgreSQL: the batch is selected `FOR UPDATE
        SKIP LOCKED` and deleted by the same statement, in one transaction, so concurrent cleaners take
        disjoint batches, never wait on each other and never delete (or count) a session twice. Any
        batch size works: no statement lists the batch's rows (see `delete_clean_batch`).
        """
        now = datetime.fromtimestamp(self._clock(), UTC)
        db = Session._meta.db
        if db.capabilities.support_for_update:
            async with in_transaction(db.connection_name) as connection:
                keys = await delete_clean_batch(connection, now, batch_size)
        else:
            # SQLite locks nothing per row: plain statements, each waiting for the write lock. A deferred
            # transaction that reads and then writes would fail at once when another process wrote in between.
            keys = await delete_clean_batch(db, now, batch_size)
        # After the commit: every key is of a session gone from the database.
        await self._cache.forget(keys)
        record_clean_removed(len(keys))
        return len(keys)

    async def drain_expired_sessions(self, batch_size: int = 1000) -> int:
        """Clean batches until one comes back short, so the whole backlog is removed; the total removed."""
        total = 0
        while True:
            removed = await self.clean_expired_sessions(batch_size)
            total += removed
            if removed < batch_size:
                return total
