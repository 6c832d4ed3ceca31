"""The SessionService: tokens into sessions, cache first, the database as the truth."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models import Channel, Order, Session, SessionType, User
from server.cache.base import Fence, SessionCacheStrategy
from server.cached_session import CachedSession
from server.services.cache_outages import CacheOutageBoard
from server.services.errors import SessionEndedError, StaleCredentialsError
from server.services.orders_merge import merge_guest_order
from server.services.request_context import RequestContext
from server.services.session_deletes import delete_clean_batch, delete_sessions
from server.services.stored_session import StoredSession, load_stored_session
from server.services.tokens import is_plausible_token, new_session_token, token_digest
from server.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How stale `last_active_at` may get before a read refreshes it (bounds writes to ~one a day).
LAST_ACTIVE_RESOLUTION = timedelta(days=1)


class EndedByLogin:
    """What a token resolves to while its guest session, just merged into a login, is remembered as ended."""


ENDED_BY_LOGIN = EndedByLogin()
#: What a failed cache lookup stands for: no copy, and no fence, so nothing read meanwhile is cached.
_NO_LOOKUP: tuple[CachedSession | None, Fence | None] = (None, None)


class SessionService:
    """Vendure's SessionService in Python: create, resolve, update and delete sessions."""

    def __init__(
        self,
        cache: SessionCacheStrategy,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        outages: CacheOutageBoard | None = None,
    ) -> None:
        """`outages` is the board of a cache shared by several instances (None for an in-process cache)."""
        self._cache = cache
        self._outages = outages
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
        self, ctx: RequestContext, user: User, authentication_strategy_name: str, remember_me: bool = True
    ) -> CachedSession:
        """A new session for `user`; the caller's guest order is merged into the user's active order.

        The merge, the deletion of the sessions that held the guest order and the creation of the
        new session happen in one transaction with the user and the orders locked. `user` is the row
        the caller checked the credentials against: if, under the lock, the user is gone or their
        password or verification changed since, no session is created (StaleCredentialsError), so a
        credential change ends every login that proved the old credential.
        """
        token = new_session_token()
        now = self._now()
        guest_order_id = ctx.session.active_order_id if ctx.session else None
        async with in_transaction() as connection:
            # Not values_list(): Tortoise 1.1 drops FOR UPDATE from it, and the user row would go unlocked.
            locked = (
                await User.filter(id=user.id)
                .using_db(connection)
                .select_for_update()
                .only("id", "password_hash", "verified")
                .first()
            )
            if locked is None or locked.password_hash != user.password_hash or locked.verified != user.verified:
                raise StaleCredentialsError()
            if guest_order_id is not None:
                # Locks in one order everywhere: user, then sessions, then orders (as addItemToOrder
                # takes them); the merge below locks the orders and ends these sessions.
                await Session.filter(active_order_id=guest_order_id).using_db(connection).select_for_update().only("id")
            merge = await merge_guest_order(guest_order_id, user.id, connection, now)
            await Session.create(
                token_hash=token_digest(token),
                type=SessionType.AUTHENTICATED,
                created_at=now,
                expires=self._first_expiry(now),
                last_active_at=now,
                user_id=user.id,
                authentication_strategy=authentication_strategy_name,
                remember_me=remember_me,
                active_order_id=merge.active_order_id,
                active_channel_id=ctx.channel_id,
                using_db=connection,
            )
            await User.filter(id=user.id).using_db(connection).update(last_login=now)
        await self._forget(merge.deleted_session_hashes)
        return await self._created(token)

    async def get_session_from_token(self, token: str) -> CachedSession | None:
        """The valid session named by `token`, from the cache while its copy is fresh, else the database."""
        session = (await self.resolve_token(token))[0]
        return session if type(session) is CachedSession else None

    async def resolve_token(self, token: str) -> tuple[CachedSession | EndedByLogin | None, bool]:
        """As `get_session_from_token`, but a guest session that a login just ended (its cart merged
        into the user's) is ENDED_BY_LOGIN rather than None, for MERGED_SESSION_GRACE; and whether
        this lookup slid the expiry of a remembered session (its cookie's lifetime is then renewed)."""
        if not is_plausible_token(token):
            return None, False
        key = token_digest(token)
        if self._outages is not None and not self._outages.trusted:  # an instance may have missed an invalidation
            return await self._refill(token, key, None)
        cached, fence = await self._cache_call(self._cache.lookup(key), _NO_LOOKUP)
        if cached is not None and cached.cache_expiry > self._clock() and cached.expires > self._now():
            return cached.with_token(token), False
        if fence is None and not self._cache_failing:  # the lookup was the first after an outage, which cleared
            fence = await self._fence(key)
        return await self._refill(token, key, fence)

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
        await self._forget([key])
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
        query = Session.filter(user_id=user_id)
        if keep_session_id is not None:
            query = query.exclude(id=keep_session_id)
        return await delete_sessions(query, connection)

    async def forget_cached(self, keys: list[str]) -> None:
        """Drop the cached copies of sessions deleted from the database (keys are token digests)."""
        await self._forget(keys)

    async def delete_sessions_by_active_order_id(self, active_order_id: int) -> int:
        return await self._delete_where(active_order_id=active_order_id)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        """Delete at most `batch_size` expired sessions and idle anonymous ones without an order.

        Safe to run from several processes at once on PostgreSQL: the batch is selected `FOR UPDATE
        SKIP LOCKED` and deleted by the same statement, in one transaction, so concurrent cleaners take
        disjoint batches, never wait on each other and never delete (or count) a session twice. Any
        batch size works: no statement lists the batch's rows (see `delete_clean_batch`).
        """
        now = self._now()
        db = Session._meta.db
        if db.capabilities.support_for_update:
            async with in_transaction(db.connection_name) as connection:
                keys = await delete_clean_batch(connection, now, batch_size)
        else:
            # SQLite locks nothing per row: plain statements, each waiting for the write lock. A deferred
            # transaction that reads and then writes would fail at once when another process wrote in between.
            keys = await delete_clean_batch(db, now, batch_size)
        # After the commit: every key is of a session gone from the database.
        await self._forget(keys)
        return len(keys)

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
        await self._invalidated(self._cache.clear())

    async def cleared(self) -> bool:
        """Clear the cache directly (outside the outage handling); whether it worked."""
        try:
            await self._cache.clear()
        except Exception:
            return False
        return True

    async def _created(self, token: str) -> CachedSession:
        key = token_digest(token)
        session = (await self._refill(token, key, await self._fence(key)))[0]
        if type(session) is not CachedSession:  # ended between its creation and this read, by a concurrent delete
            raise SessionEndedError()
        return session

    async def _fence(self, key: str) -> Fence | None:
        """A fence on `key`, taken before the database is read for a refill (None: do not cache)."""
        if self._outages is not None and not self._outages.trusted:
            return None
        return (await self._cache_call(self._cache.lookup(key), _NO_LOOKUP))[1]

    async def _refill(
        self, token: str, key: str, fence: Fence | None
    ) -> tuple[CachedSession | EndedByLogin | None, bool]:
        """Read the session, slide it, and cache it unless `key` was deleted or the cache cleared after
        `fence` was taken (a refill must never bring back a session deleted while it read); and
        whether it slid a remembered session's expiry."""
        stored = await load_stored_session(key)
        if stored is None or not self._is_valid(stored):
            if stored is not None and stored.invalidated and stored.expires > self._now():
                return ENDED_BY_LOGIN, False
            return None, False
        touched = await self._touch(stored)
        session = self.serialize_session(touched, token)
        if fence is not None:
            await self._cache_call(self._cache.set(key, session.without_token(), fence), None)
        return session, stored.remember_me and touched.expires != stored.expires

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
        """Write the change, drop the cached copy, then refill it behind a fence taken after the drop.

        Racing updates of one session (on several instances, or with a pause between a read and its
        cache write) cannot land an older value last: an update's drop voids the fence of every refill
        that read before the update was written.
        """
        key = token_digest(session.token)
        await Session.filter(token_hash=key, invalidated=False, expires__gt=self._now()).update(**changes)
        await self._forget([key])
        updated = (await self._refill(session.token, key, await self._fence(key)))[0]
        if type(updated) is not CachedSession:
            raise SessionEndedError()
        return updated

    async def _delete_where(self, **conditions: int) -> int:
        keys = await delete_sessions(Session.filter(**conditions), Session._meta.db)
        await self._forget(keys)
        return len(keys)

    async def _forget(self, keys: list[str]) -> None:
        """Drop the cached copies of sessions changed or ended in the database (keys are token digests)."""
        if keys:
            await self._invalidated(self._cache.delete_many(keys))

    async def _invalidated(self, call: Awaitable[None]) -> None:
        """Run an invalidating cache call. If the cache failed it, return only once no other instance can
        still trust what it left behind (see CacheOutageBoard), so nothing unseen is acknowledged."""
        if not await self._cache_call(_done(call), False) and self._cache_failing and self._outages is not None:
            await self._outages.acknowledged()

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
                if self._outages is not None:
                    self._outages.report()
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
            if self._outages is not None:
                try:
                    await self._outages.withdraw()
                except Exception as error:  # the board refreshes no more; it goes stale and is removed
                    logger.warning("could not withdraw the cache outage: %s", type(error).__name__)


async def _done(call: Awaitable[None]) -> bool:
    await call
    return True
