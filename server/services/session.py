"""The SessionService: tokens into sessions, cache first, the database as the truth."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tortoise.transactions import in_transaction

from models import Channel, Order, Session, SessionType, User
from server.cache.base import SessionCacheStrategy
from server.services.cached_session import CachedSession
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


class SessionService:
    """Vendure's SessionService in Python: create, resolve, update and delete sessions."""

    def __init__(self, cache: SessionCacheStrategy, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._duration = timedelta(seconds=settings.session_duration)
        self._cache_ttl = settings.session_cache_ttl
        self._clock = clock
        self._cache_failing = False

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def create_anonymous_session(self, channel_id: int | None = None) -> CachedSession:
        """A new guest session with a fresh random token, stored and cached."""
        token = new_session_token()
        now = self._now()
        await Session.create(
            token_hash=token_digest(token),
            type=SessionType.ANONYMOUS,
            expires=now + self._duration,
            last_active_at=now,
            active_channel_id=channel_id,
        )
        return await self._created(token)

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
                expires=now + self._duration,
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
        to slide, so an active session is always re-read (and extended) before it can lapse.
        """
        due = min(self._extension_due(session), session.last_active_at + LAST_ACTIVE_RESOLUTION).timestamp()
        return CachedSession(
            cache_expiry=min(self._clock() + self._cache_ttl, due),
            id=session.id,
            token=token,
            expires=session.expires,
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

    async def delete_sessions_by_active_order_id(self, active_order_id: int) -> int:
        return await self._delete_where(active_order_id=active_order_id)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        """Delete at most `batch_size` expired sessions and idle anonymous ones without an order."""
        now = self._now()
        expired = Session.filter(expires__lte=now)
        # `expires__gt` keeps the two sets disjoint: an expired idle session fetched twice would shorten
        # the batch, and a short batch tells the clean loop the backlog is drained.
        idle = Session.filter(
            type=SessionType.ANONYMOUS,
            active_order_id__isnull=True,
            last_active_at__lt=now - ANONYMOUS_IDLE_LIMIT,
            expires__gt=now,
        )
        rows = list(await expired.limit(batch_size).values_list("id", "token_hash"))
        if len(rows) < batch_size:
            rows += await idle.limit(batch_size - len(rows)).values_list("id", "token_hash")
        if not rows:
            return 0
        deleted = await Session.filter(id__in=[row[0] for row in rows]).delete()
        await self._cache_delete_many([row[1] for row in rows])
        return deleted

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
        return not stored.invalidated and stored.expires > self._now()

    def _extension_due(self, stored: StoredSession) -> datetime:
        return stored.expires - self._duration / 2

    async def _touch(self, stored: StoredSession) -> StoredSession:
        """Slide the expiry when less than half the duration is left, and keep last_active_at roughly current."""
        now = self._now()
        changes: dict[str, datetime] = {}
        if now >= self._extension_due(stored):
            changes["expires"] = now + self._duration
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
        return updated

    async def _delete_where(self, **conditions: int) -> int:
        rows = [str(value) for value in await Session.filter(**conditions).values_list("token_hash", flat=True)]
        if not rows:
            return 0
        deleted = await Session.filter(token_hash__in=rows).delete()
        await self._cache_delete_many(rows)
        return deleted

    async def _cache_delete_many(self, keys: list[str]) -> None:
        if keys:
            await asyncio.gather(*(self._cache_call(self._cache.delete(key), None) for key in keys))

    async def _cache_call(self, call: Awaitable[T], fallback: T) -> T:
        """Run one cache call; a failing cache is logged once per outage and the database answers."""
        try:
            result = await call
        except Exception as error:
            if not self._cache_failing:
                self._cache_failing = True
                logger.warning("session cache unavailable, using the database: %s", type(error).__name__)
            return fallback
        if self._cache_failing:
            self._cache_failing = False
            logger.info("session cache available again")
        return result
