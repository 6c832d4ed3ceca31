"""The SessionService: tokens into sessions, cache first, the database as the truth.

The cache is reached through its guard (server/cache/guarded.py), which never raises and never
answers a stale copy; when a session starts, slides and ends is SessionLifetime's business, and the
clean job is SessionCleaner's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models import Channel, Order, Session, SessionType, User
from server.cache import Fence, GuardedSessionCache
from server.cached_session import CachedSession
from server.metrics import RevokeReason, record_lookup, record_session_created, record_sessions_revoked
from server.services.client_info import ClientInfo
from server.services.errors import SessionEndedError
from server.services.orders_merge import lock_for_login, merge_guest_order
from server.services.request_context import RequestContext
from server.services.session_activity import SessionActivity
from server.services.session_cleanup import SessionCleaner
from server.services.session_deletes import delete_sessions
from server.services.session_lifetime import SessionLifetime
from server.services.stored_session import StoredSession, load_stored_session
from server.services.tokens import is_plausible_token, new_session_token, token_digest
from server.settings import Settings


class EndedByLogin:
    """What a token resolves to while its guest session, just merged into a login, is remembered as ended."""


ENDED_BY_LOGIN = EndedByLogin()


class SessionService:
    """Vendure's SessionService in Python: create, resolve, update and delete sessions."""

    def __init__(self, cache: GuardedSessionCache, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._clock = clock
        self._lifetime = SessionLifetime(settings, clock)
        self._activity = SessionActivity(settings, self._lifetime)
        self._cleaner = SessionCleaner(cache, clock)

    async def create_anonymous_session(
        self, channel_id: int | None = None, client: ClientInfo | None = None
    ) -> CachedSession:
        """A new guest session with a fresh random token, stored (with the creating request's `client`) and cached."""
        token = new_session_token()
        key = token_digest(token)
        now = self._lifetime.now()
        record = await Session.create(
            token_hash=key,
            type=SessionType.ANONYMOUS,
            active_channel_id=channel_id,
            **self._activity.first_columns(now, client),
        )
        stored = StoredSession.new_guest(record.id, key, now, record.expires, channel_id)
        session = self.serialize_session(stored, token)
        await self._cache.set(key, session.without_token())
        record_session_created("anonymous")
        return session

    async def create_new_authenticated_session(
        self,
        ctx: RequestContext,
        user: User,
        authentication_strategy_name: str,
        remember_me: bool = True,
        proved: bool = False,
    ) -> CachedSession:
        """A new session for `user`; the caller's guest order is merged into the user's active order.
        `proved`: the user proved a credential in this request (login), which becomes `authenticated_at`.

        The merge, the deletion of the sessions that held the guest order and the creation of the
        new session happen in one transaction with the user and the orders locked. `user` is the row
        the caller checked the credentials against: if, under the lock, the user is gone or their
        password or verification changed since, no session is created (StaleCredentialsError), so a
        credential change ends every login that proved the old credential.
        """
        token = new_session_token()
        key = token_digest(token)
        now = self._lifetime.now()
        guest_order_id = ctx.session.active_order_id if ctx.session else None
        client = ClientInfo(ctx.client_address, ctx.user_agent)
        async with in_transaction() as connection:
            await lock_for_login(user, guest_order_id, connection)
            merge = await merge_guest_order(guest_order_id, user.id, connection, now)
            await Session.create(
                token_hash=key,
                type=SessionType.AUTHENTICATED,
                authenticated_at=now if proved else None,
                user_id=user.id,
                authentication_strategy=authentication_strategy_name,
                remember_me=remember_me,
                active_order_id=merge.active_order_id,
                active_channel_id=ctx.channel_id,
                using_db=connection,
                **self._activity.first_columns(now, client),
            )
            await User.filter(id=user.id).using_db(connection).update(last_login=now)
        await self._cache.forget(merge.deleted_session_hashes)
        record_sessions_revoked("login", len(merge.deleted_session_hashes))
        record_session_created("authenticated")
        return await self._created(token, key)

    async def get_session_from_token(self, token: str) -> CachedSession | None:
        """The valid session named by `token`, from the cache while its copy is fresh, else the database."""
        session = (await self.resolve_token(token))[0]
        return session if type(session) is CachedSession else None

    async def resolve_token(
        self, token: str, client: ClientInfo | None = None
    ) -> tuple[CachedSession | EndedByLogin | None, bool]:
        """As `get_session_from_token`, but a guest session that a login just ended (its cart merged
        into the user's) is ENDED_BY_LOGIN rather than None, for MERGED_SESSION_GRACE; and whether
        this lookup slid the expiry of a remembered session (its cookie's lifetime is then renewed).

        `client` is given when the request presents the token as its own credential (cookie or
        bearer): once SESSION_ACTIVITY_RESOLUTION has passed since the session was last seen, the
        cached copy is passed over and the read records the time, the address and the user agent."""
        if not is_plausible_token(token):
            record_lookup("unknown")
            return None, False
        key = token_digest(token)
        cached, fence = await self._cache.lookup(key)
        if cached is not None and (client is None or cached.activity_due > self._clock()):
            return cached.with_token(token, key), False
        found = await self._refill(token, key, fence, client)
        record_lookup("database" if type(found[0]) is CachedSession else "unknown")
        return found

    def serialize_session(self, session: StoredSession, token: str = "") -> CachedSession:
        """The form of a stored session the API returns and the cache keeps (see SessionLifetime.cached_until)."""
        return self._lifetime.cached_copy(session, token)

    async def serialize_stored_session(self, token: str) -> CachedSession | None:
        """The stored session freshly serialized from the database; the cache is left untouched."""
        if not is_plausible_token(token):
            return None
        stored = await load_stored_session(token_digest(token))
        if stored is None or not self._lifetime.is_valid(stored):
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
        deleted = await Session.filter(token_hash=session.cache_key).delete()
        await self._cache.forget([session.cache_key])
        record_sessions_revoked("logout", deleted)
        return deleted > 0

    async def delete_sessions_by_user(self, user_id: int) -> int:
        return await self._delete_where("user", user_id=user_id)

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

    async def forget_cached(self, keys: list[str], reason: RevokeReason) -> None:
        """Drop the cached copies of sessions deleted from the database (keys are token digests)."""
        await self._cache.forget(keys)
        record_sessions_revoked(reason, len(keys))

    async def delete_sessions_by_active_order_id(self, active_order_id: int) -> int:
        return await self._delete_where("active_order", active_order_id=active_order_id)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        return await self._cleaner.clean_expired_sessions(batch_size)  # see SessionCleaner

    async def drain_expired_sessions(self, batch_size: int = 1000) -> int:
        return await self._cleaner.drain_expired_sessions(batch_size)

    async def clear_cache(self) -> None:
        """Forget every cached session: called when a Channel or Role changes."""
        await self._cache.clear()

    async def _created(self, token: str, key: str) -> CachedSession:
        session = (await self._refill(token, key, await self._fence(key)))[0]
        if type(session) is not CachedSession:  # ended between its creation and this read, by a concurrent delete
            raise SessionEndedError()
        return session

    async def _fence(self, key: str) -> Fence | None:
        """A fence on `key`, taken before the database is read for a refill (None: do not cache)."""
        return (await self._cache.lookup(key))[1]

    async def _refill(
        self, token: str, key: str, fence: Fence | None, client: ClientInfo | None = None
    ) -> tuple[CachedSession | EndedByLogin | None, bool]:
        """Read the session, slide it (and record `client`'s activity when due), and cache it unless
        `key` was deleted or the cache cleared after `fence` was taken (a refill must never bring back
        a session deleted while it read); and whether it slid a remembered session's expiry."""
        stored = await load_stored_session(key)
        if stored is None or not self._lifetime.is_valid(stored):
            if stored is not None and stored.invalidated and stored.expires > self._lifetime.now():
                return ENDED_BY_LOGIN, False
            return None, False
        touched = await self._activity.touch(stored, client)
        session = self.serialize_session(touched, token)
        if fence is not None:
            await self._cache.set(key, session.without_token(), fence)
        return session, stored.remember_me and touched.expires != stored.expires

    async def _update(self, session: CachedSession, **changes: int | None) -> CachedSession:
        """Write the change, drop the cached copy, then refill it behind a fence taken after the drop.

        Racing updates of one session (on several instances, or with a pause between a read and its
        cache write) cannot land an older value last: an update's drop voids the fence of every refill
        that read before the update was written.
        """
        key = session.cache_key
        await Session.filter(token_hash=key, invalidated=False, expires__gt=self._lifetime.now()).update(**changes)
        await self._cache.forget([key])
        updated = (await self._refill(session.token, key, await self._fence(key)))[0]
        if type(updated) is not CachedSession:
            raise SessionEndedError()
        return updated

    async def _delete_where(self, reason: RevokeReason, **conditions: int) -> int:
        keys = await delete_sessions(Session.filter(**conditions), Session._meta.db)
        await self.forget_cached(keys, reason)
        return len(keys)
