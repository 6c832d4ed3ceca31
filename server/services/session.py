"""The SessionService: tokens into sessions, cache first, the database as the truth."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from models import Channel, Order, Session, SessionType, User
from server.cache.base import SessionCacheStrategy
from server.cached_session import CachedSession
from server.services.errors import ForbiddenError
from server.services.orders_merge import merge_guest_order
from server.services.request_context import RequestContext
from server.services.stored_session import StoredSession, load_stored_session
from server.services.tokens import is_plausible_token, new_session_token, token_digest
from server.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Anonymous sessions with no active order are cleaned after this long without use.
ANONYMOUS_IDLE_LIMIT = timedelta(days=7)
#: How stale `last_active_at` may get before a read refreshes it (bounds writes to ~one a day).
LAST_ACTIVE_RESOLUTION = timedelta(days=1)
#: Cache deletions in flight at once when many sessions go together (a clean batch, a user's sessions).
CACHE_DELETE_CONCURRENCY = 32


class SessionService:
    """Vendure's SessionService in Python: create, resolve, update and delete sessions."""

    def __init__(self, cache: SessionCacheStrategy, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._duration = timedelta(seconds=settings.session_duration)
        lifetime = settings.session_max_lifetime
        self._max_lifetime = None if lifetime is None else timedelta(seconds=lifetime)
        self._cache_ttl = settings.session_cache_ttl
        self._clock = clock
        self._cache_failing = False
        #: counts the clears made when the cache came back; a result read before one is not trusted
        self._cache_epoch = 0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def create_anonymous_session(self, channel_id: int | None = None) -> CachedSession:
        """A new guest session with a fresh random token, stored and cached."""
        token = new_session_token()
        key = token_digest(token)
        now = self._now()
        record = await Session.create(
            token_hash=key,
            type=SessionType.ANONYMOUS,
            created_at=now,
            expires=self._first_expiry(now),
            last_active_at=now,
            active_channel_id=channel_id,
        )
        # Everything about a new guest session is known: serialise it without reading it back.
        stored = StoredSession(
            id=record.id,
            token_hash=key,
            type=SessionType.ANONYMOUS,
            expires=record.expires,
            last_active_at=now,
            invalidated=False,
            authentication_strategy=None,
            active_order_id=None,
            active_channel_id=channel_id,
            user=None,
            created_at=now,
        )
        session = self.serialize_session(stored, token)
        await self._cache_call(self._cache.set(key, session.without_token()), None)
        return session

    async def create_new_authenticated_session(
        self, ctx: RequestContext, user: User, authentication_strategy_name: str
    ) -> CachedSession:
        """A new session for `user`; the caller's guest order is merged into the user's active order.

        The merge, the deletion of the sessions that held the guest order and the creation of the
        new session happen in one transaction with the user and the orders locked.
        """
        token = new_session_token()
        now = self._now()
        guest_order_id = ctx.session.active_order_id if ctx.session else None
        async with in_transaction() as connection:
            # Not values_list(): Tortoise 1.1 drops FOR UPDATE from it, and the user row would go unlocked.
            await User.filter(id=user.id).using_db(connection).select_for_update().only("id")
            merge = await merge_guest_order(guest_order_id, user.id, connection)
            await Session.create(
                token_hash=token_digest(token),
                type=SessionType.AUTHENTICATED,
                created_at=now,
                expires=self._first_expiry(now),
                last_active_at=now,
                user_id=user.id,
                authentication_strategy=authentication_strategy_name,
                active_order_id=merge.active_order_id,
                active_channel_id=ctx.channel_id,
                using_db=connection,
            )
            await User.filter(id=user.id).using_db(connection).update(last_login=now)
        await self._cache_delete_many(merge.deleted_session_hashes)
        return await self._created(token)

    async def get_session_from_token(self, token: str) -> CachedSession | None:
        """The valid session named by `token`, from the cache while its copy is fresh, else the database."""
        if not is_plausible_token(token):
            return None
        key = token_digest(token)
        cached = await self._cache_call(self._cache.get(key), None)
        if cached is not None and cached.cache_expiry > self._clock() and cached.expires > self._now():
            return cached.with_token(token)
        return await self._serialize_and_cache(token, key)

    def serialize_session(self, session: StoredSession, token: str = "") -> CachedSession:
        """The cacheable form of a stored session.

        Its cached copy is trusted for SESSION_CACHE_TTL, but never past the moment its expiry is due
        to slide, so an active session is always re-read (and extended) before it can lapse, and never
        past the end of its SESSION_MAX_LIFETIME.
        """
        due = min(self._extension_due(session), session.last_active_at + LAST_ACTIVE_RESOLUTION)
        expires = session.expires
        end = self._absolute_end(session)
        if end is not None:
            due, expires = min(due, end), min(expires, end)
        return CachedSession(
            cache_expiry=min(self._clock() + self._cache_ttl, due.timestamp()),
            id=session.id,
            token=token,
            expires=expires,
            active_order_id=session.active_order_id,
            authentication_strategy=session.authentication_strategy,
            user=session.user,
            active_channel_id=session.active_channel_id,
        )

    async def serialize_stored_session(self, token: str) -> CachedSession | None:
        """The stored session freshly serialized from the database; the cache is left untouched."""
        if not is_plausible_token(token):
            return None
        stored = await load_stored_session(token_digest(token))
        if stored is None or not self._is_valid(stored):
            return None
        return self.serialize_session(stored, token)

    async def set_active_order(self, session: CachedSession, order: Order) -> CachedSession:
        return await self._update(session, active_order_id=order.id)

    async def unset_active_order(self, session: CachedSession) -> CachedSession:
        return await self._update(session, active_order_id=None)

    async def set_active_channel(self, session: CachedSession, channel: Channel) -> CachedSession:
        return await self._update(session, active_channel_id=channel.id)

    async def delete_session(self, session: CachedSession) -> bool:
        """End one session (logout): gone from the database and the cache."""
        key = token_digest(session.token)
        deleted = await Session.filter(token_hash=key).delete()
        await self._cache_call(self._cache.delete(key), None)
        return deleted > 0

    async def delete_sessions_by_user(self, user_id: int) -> int:
        return await self._delete_where(user_id=user_id)

    async def delete_user_sessions_in(
        self, connection: BaseDBAsyncClient, user_id: int, keep_session_id: int | None = None
    ) -> list[str]:
        """Delete the user's sessions, all but `keep_session_id`, through `connection` (the caller's
        transaction, which holds the user row locked); returns their cache keys, which the caller
        passes to `forget_cached` once the transaction has committed.
        """
        query = Session.filter(user_id=user_id).using_db(connection)
        if keep_session_id is not None:
            query = query.exclude(id=keep_session_id)
        keys = [str(key) for key in await query.values_list("token_hash", flat=True)]
        if keys:
            await Session.filter(token_hash__in=keys).using_db(connection).delete()
        return keys

    async def forget_cached(self, keys: list[str]) -> None:
        """Drop the cached copies of sessions deleted from the database (keys are token digests)."""
        await self._cache_delete_many(keys)

    async def delete_sessions_by_active_order_id(self, active_order_id: int) -> int:
        return await self._delete_where(active_order_id=active_order_id)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        """Delete at most `batch_size` expired sessions and idle anonymous ones without an order.

        Safe to run from several processes at once on PostgreSQL: the batch is selected `FOR UPDATE
        SKIP LOCKED` and deleted in the same transaction, so concurrent cleaners take disjoint batches,
        never wait on each other and never delete (or count) a session twice.
        """
        now = self._now()
        db = Session._meta.db
        if db.capabilities.support_for_update:
            async with in_transaction(db.connection_name) as connection:
                deleted, keys = await _delete_batch(connection, now, batch_size)
        else:
            # SQLite locks nothing per row: plain statements, each waiting for the write lock. A deferred
            # transaction that reads and then writes would fail at once when another process wrote in between.
            deleted, keys = await _delete_batch(db, now, batch_size)
        # After the commit: every key is of a session gone from the database.
        await self._cache_delete_many(keys)
        return deleted

    async def drain_expired_sessions(self, batch_size: int = 1000) -> int:
        """Clean batches until one comes back short, so the whole backlog is removed; the total removed."""
        total = 0
        while True:
            removed = await self.clean_expired_sessions(batch_size)
            total += removed
            if removed < batch_size:
                return total

    async def clear_cache(self) -> None:
        """Forget every cached session: called when a Channel or Role changes."""
        await self._cache_call(self._cache.clear(), None)

    async def _created(self, token: str) -> CachedSession:
        session = await self._serialize_and_cache(token)
        if session is None:  # deleted between its creation and this read: only a concurrent delete does that
            raise ForbiddenError()
        return session

    async def _serialize_and_cache(self, token: str, key: str | None = None) -> CachedSession | None:
        key = key or token_digest(token)
        stored = await load_stored_session(key)
        if stored is None or not self._is_valid(stored):
            return None
        stored = await self._touch(stored)
        session = self.serialize_session(stored, token)
        await self._cache_call(self._cache.set(key, session.without_token()), None)
        return session

    def _is_valid(self, stored: StoredSession) -> bool:
        now = self._now()
        end = self._absolute_end(stored)
        return not stored.invalidated and stored.expires > now and (end is None or end > now)

    def _first_expiry(self, now: datetime) -> datetime:
        if self._max_lifetime is None:
            return now + self._duration
        return now + min(self._duration, self._max_lifetime)

    def _absolute_end(self, stored: StoredSession) -> datetime | None:
        """When SESSION_MAX_LIFETIME ends the session however active it is; None without that limit."""
        if self._max_lifetime is None or stored.created_at is None:
            return None
        return stored.created_at + self._max_lifetime

    def _extension_due(self, stored: StoredSession) -> datetime:
        end = self._absolute_end(stored)
        if end is not None and stored.expires >= end:
            return end  # it cannot slide past its absolute end, so no extension is ever due
        return stored.expires - self._duration / 2

    async def _touch(self, stored: StoredSession) -> StoredSession:
        """Slide the expiry when less than half the duration is left, and keep last_active_at roughly current."""
        now = self._now()
        changes: dict[str, datetime] = {}
        if now >= self._extension_due(stored):
            end = self._absolute_end(stored)
            changes["expires"] = now + self._duration if end is None else min(now + self._duration, end)
        if changes or now - stored.last_active_at >= LAST_ACTIVE_RESOLUTION:
            changes["last_active_at"] = now
        if not changes:
            return stored
        await Session.filter(id=stored.id).update(**changes)
        return replace(stored, expires=changes.get("expires", stored.expires), last_active_at=now)

    async def _update(self, session: CachedSession, **changes: int | None) -> CachedSession:
        key = token_digest(session.token)
        await Session.filter(token_hash=key, invalidated=False, expires__gt=self._now()).update(**changes)
        updated = await self._serialize_and_cache(session.token, key)
        if updated is None:
            raise ForbiddenError()
        # Racing updates of one session (on several instances, or with a pause between a read and
        # its cache write) can land their cache writes out of order. Read again once ours is written:
        # if the row has moved on (or is gone), drop the copy, so no earlier value outlives a later one.
        latest = await load_stored_session(key)
        if (
            latest is None
            or not self._is_valid(latest)
            or replace(self.serialize_session(latest, updated.token), cache_expiry=updated.cache_expiry) != updated
        ):
            await self._cache_call(self._cache.delete(key), None)
        return updated

    async def _delete_where(self, **conditions: int) -> int:
        rows = [str(value) for value in await Session.filter(**conditions).values_list("token_hash", flat=True)]
        if not rows:
            return 0
        deleted = await Session.filter(token_hash__in=rows).delete()
        await self._cache_delete_many(rows)
        return deleted

    async def _cache_delete_many(self, keys: list[str]) -> None:
        # A few at a time: a clean batch of a thousand at once exhausts the Redis connection pool
        # (MaxConnectionsError), most deletes fail, and the outage handling then clears the whole cache.
        for start in range(0, len(keys), CACHE_DELETE_CONCURRENCY):
            chunk = keys[start : start + CACHE_DELETE_CONCURRENCY]
            await asyncio.gather(*(self._cache_call(self._cache.delete(key), None) for key in chunk))

    async def _cache_call(self, call: Awaitable[T], fallback: T) -> T:
        """Run one cache call; a failing cache is logged once per outage and the database answers.

        Deletes that failed during an outage leave entries behind (a logged-out session, say), which a
        cache that was only slow or cut off still holds when it answers again. So the first call that
        succeeds after an outage clears the cache, and no result obtained before that clear is used.
        """
        failing, epoch = self._cache_failing, self._cache_epoch
        try:
            result = await call
        except Exception as error:
            if not self._cache_failing:
                self._cache_failing = True
                logger.warning("session cache unavailable, using the database: %s", type(error).__name__)
            return fallback
        if self._cache_failing:
            await self._clear_after_outage()
            return fallback
        if failing or epoch != self._cache_epoch:
            return fallback
        return result

    async def _clear_after_outage(self) -> None:
        try:
            await self._cache.clear()
        except Exception:
            return  # still failing: a later call tries again
        if self._cache_failing:
            self._cache_failing = False
            self._cache_epoch += 1
            logger.info("session cache available again; cleared, since deletes may have been lost meanwhile")


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
    """At most `limit` rows of `query` (id and token digest), locked, skipping rows another cleaner holds.

    Not values_list(): Tortoise 1.1 drops FOR UPDATE from it.
    """
    return query.using_db(connection).limit(limit).select_for_update(skip_locked=True).only("id", "token_hash")


async def _delete_batch(connection: BaseDBAsyncClient, now: datetime, batch_size: int) -> tuple[int, list[str]]:
    """Delete one batch through `connection`; the number deleted and the token digests of the batch."""
    rows = await clean_batch(expired_sessions(now), connection, batch_size)
    if len(rows) < batch_size:
        rows += await clean_batch(idle_anonymous_sessions(now), connection, batch_size - len(rows))
    if not rows:
        return 0, []
    deleted = await Session.filter(id__in=[row.id for row in rows]).using_db(connection).delete()
    return deleted, [row.token_hash for row in rows]
