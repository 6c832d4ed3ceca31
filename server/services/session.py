"""The SessionService: tokens into sessions, cache first, the database as the truth.

The cache is reached through its guard (server/cache/guarded.py), which never raises and never
answers a stale copy; when a session starts, slides and ends is SessionLifetime's business, the
clean job is SessionCleaner's, and a lookup's database read SessionRefill's (tokens that name no
session are remembered there, see server/services/unknown_tokens.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from models import Channel, Order, Session, SessionEventType, User
from server.cache import GuardedSessionCache
from server.cached_session import CachedSession
from server.metrics import RevokeReason, record_lookup, record_session_created, record_sessions_revoked
from server.services.client_info import ClientInfo
from server.services.login_records import SessionStart, record_session_start, recorded_start
from server.services.orders_merge import lock_for_login, merge_guest_order
from server.services.request_context import RequestContext
from server.services.session_activity import SessionActivity
from server.services.session_cleanup import SessionCleaner
from server.services.session_deletes import Ending, cache_keys, end_sessions
from server.services.session_events import recording_transaction
from server.services.session_lifetime import SessionLifetime
from server.services.session_refill import SessionRefill
from server.services.stored_session import (
    StoredSession,
    insert_authenticated_session,
    insert_guest_session,
    load_stored_session,
)
from server.services.tokens import is_plausible_token, new_session_token, token_digest
from server.services.unknown_tokens import ENDED_BY_LOGIN, EndedByLogin, UnknownTokens
from server.settings import Settings

__all__ = ["ENDED_BY_LOGIN", "EndedByLogin", "SessionService"]


class SessionService:
    """Vendure's SessionService in Python: create, resolve, update and delete sessions."""

    def __init__(self, cache: GuardedSessionCache, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._clock = clock
        self._lifetime = SessionLifetime(settings, clock)
        self._activity = SessionActivity(settings, self._lifetime)
        self._unknown = UnknownTokens(settings.session_negative_cache_size, settings.session_negative_cache_ttl, clock)
        self._reads = SessionRefill(cache, self._lifetime, self._activity, self._unknown)
        self._cleaner = SessionCleaner(cache, clock, settings.session_event_retention)
        self._session_limit = settings.session_limit_per_user

    async def create_anonymous_session(
        self, channel_id: int | None = None, client: ClientInfo | None = None
    ) -> CachedSession:
        """A new guest session with a fresh random token, stored (with the creating request's `client`) and cached:
        one INSERT and one cache write."""
        token = new_session_token()
        key = token_digest(token)
        stored = await insert_guest_session(key, channel_id, self._activity.first_columns(self._lifetime.now(), client))
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
        impersonator_id: int | None = None,
        start: SessionStart | None = None,
    ) -> CachedSession:
        """A new session for `user`; the caller's guest order is merged into the user's active order.
        `proved`: the user proved a credential in this request (login), which becomes `authenticated_at`.
        `impersonator_id`: the administrator making it for another user (see server/services/impersonation.py):
        it then takes nothing from the caller's session and ends within IMPERSONATION_MAX_LIFETIME.
        `start`: how the session is recorded (None: as `recorded_start` derives it).
        The user's oldest live sessions beyond SESSION_LIMIT_PER_USER end (server/services/login_records.py).

        The merge, the deletion of the sessions that held the guest order and the creation of the
        new session happen in one transaction with the user and the orders locked. `user` is the row
        the caller checked the credentials against: if, under the lock, the user is gone or their
        password or verification changed since, no session is created (StaleCredentialsError), so a
        credential change ends every login that proved the old credential.
        """
        token = new_session_token()
        key = token_digest(token)
        now = self._lifetime.now()
        guest_order_id = ctx.session.active_order_id if ctx.session and impersonator_id is None else None
        client = ClientInfo(ctx.client_address, ctx.user_agent)
        async with recording_transaction() as connection:
            await lock_for_login(user, guest_order_id, connection)
            merge = await merge_guest_order(guest_order_id, user.id, connection, now)
            columns = self._activity.first_columns(now, client, impersonated=impersonator_id is not None)
            session_id = await insert_authenticated_session(
                connection,
                key,
                user.id,
                columns,
                authentication_strategy=authentication_strategy_name,
                remember_me=remember_me,
                authenticated_at=now if proved else None,
                impersonator_id=impersonator_id,
                active_order_id=merge.active_order_id,
                active_channel_id=ctx.channel_id,
            )
            recorded = recorded_start(start, impersonator_id, proved)
            over_limit = await record_session_start(
                connection,
                session_id,
                columns["client_address"],
                user.id,
                recorded,
                merge.merged,
                self._session_limit,
                now,
            )
        await self._cache.forget(merge.deleted_session_hashes + cache_keys(over_limit))
        record_sessions_revoked("login", len(merge.deleted_session_hashes))
        record_sessions_revoked("session_limit", len(over_limit))
        record_session_created("authenticated")
        return await self._reads.fenced(token, key)

    def now(self) -> datetime:
        """The time on this service's clock (tests move it): sessions start, slide, end and are proved by it."""
        return self._lifetime.now()

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
        if (dead := self._unknown.answer(key)) is not None:  # see server/services/unknown_tokens.py
            record_lookup("negative_cache")
            return (dead if isinstance(dead, EndedByLogin) else None), False
        cached, fence = await self._cache.lookup(key)
        if cached is not None and (client is None or cached.activity_due > self._clock()):
            return cached.with_token(token, key), False
        found = await self._reads.refill(token, key, fence, client)
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
        """End one session (logout, recorded as LOGOUT): gone from the database and the cache."""
        ending = Ending(SessionEventType.LOGOUT, "logout", self._lifetime.now())
        deleted = await end_sessions(Session.filter(token_hash=session.cache_key), ending)
        await self._cache.forget([session.cache_key])
        record_sessions_revoked("logout", len(deleted))
        return bool(deleted)

    async def delete_sessions_by_user(self, user_id: int, actor_id: int | None = None) -> int:
        """End the user's sessions: REVOKED "revoked-by-owner", "revoked-by-admin" when `actor_id` is another user."""
        by_admin = actor_id is not None and actor_id != user_id
        reason = "revoked-by-admin" if by_admin else "revoked-by-owner"
        ending = Ending(SessionEventType.REVOKED, reason, self._lifetime.now(), actor_id if by_admin else None)
        return await self._delete_where("user", ending, user_id=user_id)

    async def delete_user_sessions_in(
        self, connection: BaseDBAsyncClient, user_id: int, keep_session_id: int | None = None, *, ending: Ending
    ) -> list[str]:
        """Delete the user's sessions, all but `keep_session_id`, and record their `ending`, through
        `connection` (the caller's transaction, which holds the user row locked); returns their cache
        keys, which the caller passes to `forget_cached` once the transaction has committed.
        """
        # With them the sessions the user opened as others (impersonations): they stand on the user's credential.
        query = Session.filter(Q(user_id=user_id) | Q(impersonator_id=user_id))
        if keep_session_id is not None:
            query = query.exclude(id=keep_session_id)
        return cache_keys(await end_sessions(query, ending, connection))

    async def forget_cached(self, keys: list[str], reason: RevokeReason) -> None:
        """Drop the cached copies of sessions deleted from the database (keys are token digests)."""
        await self._cache.forget(keys)
        record_sessions_revoked(reason, len(keys))

    async def delete_sessions_by_active_order_id(self, active_order_id: int, actor_id: int | None = None) -> int:
        """End the sessions holding the order (REVOKED "order-deleted", by `actor_id`)."""
        ending = Ending(SessionEventType.REVOKED, "order-deleted", self._lifetime.now(), actor_id)
        return await self._delete_where("active_order", ending, active_order_id=active_order_id)

    async def clean_expired_sessions(self, batch_size: int = 1000) -> int:
        return await self._cleaner.clean_expired_sessions(batch_size)  # see SessionCleaner

    async def drain_expired_sessions(self, batch_size: int = 1000) -> int:
        return await self._cleaner.drain_expired_sessions(batch_size)

    async def clear_cache(self) -> None:
        """Forget every cached session: called when a Channel or Role changes."""
        await self._cache.clear()

    async def _update(self, session: CachedSession, **changes: int | None) -> CachedSession:
        """Write the change, drop the cached copy, then refill it behind a fence taken after the drop.

        Racing updates of one session (on several instances, or with a pause between a read and its
        cache write) cannot land an older value last: an update's drop voids the fence of every refill
        that read before the update was written.
        """
        key = session.cache_key
        await Session.filter(token_hash=key, invalidated=False, expires__gt=self._lifetime.now()).update(**changes)
        await self._cache.forget([key])
        return await self._reads.fenced(session.token, key)

    async def _delete_where(self, reason: RevokeReason, ending: Ending, **conditions: int) -> int:
        keys = cache_keys(await end_sessions(Session.filter(**conditions), ending))
        await self.forget_cached(keys, reason)
        return len(keys)
