"""Reading a session from the database for a lookup that the cache could not answer, and caching it.

A refill reads the session (server/services/stored_session.py), slides it and records its activity
when due (SessionActivity), and writes its copy back behind the fence its lookup took, so a refill
never brings back a session deleted while it read. A read that finds no valid session is remembered
(server/services/unknown_tokens.py): the next lookup of that token is answered without a query.
"""

from __future__ import annotations

from server.cache import Fence, GuardedSessionCache
from server.cached_session import CachedSession
from server.services.client_info import ClientInfo
from server.services.errors import SessionEndedError
from server.services.session_activity import SessionActivity
from server.services.session_lifetime import SessionLifetime
from server.services.stored_session import StoredSession, load_stored_session
from server.services.unknown_tokens import ENDED_BY_LOGIN, UNKNOWN, DeadAnswer, EndedByLogin, UnknownTokens


class SessionRefill:
    def __init__(
        self, cache: GuardedSessionCache, lifetime: SessionLifetime, activity: SessionActivity, unknown: UnknownTokens
    ) -> None:
        self._cache = cache
        self._lifetime = lifetime
        self._activity = activity
        self._unknown = unknown

    async def refill(
        self, token: str, key: str, fence: Fence | None, client: ClientInfo | None = None
    ) -> tuple[CachedSession | EndedByLogin | None, bool]:
        """Read the session, slide it (and record `client`'s activity when due), and cache it unless
        `key` was deleted or the cache cleared after `fence` was taken (None: do not cache); and whether
        it slid a remembered session's expiry."""
        stored = await self._unknown.read_once(key, self._read)
        if not isinstance(stored, StoredSession):
            return (stored if isinstance(stored, EndedByLogin) else None), False
        touched = await self._activity.touch(stored, client)
        session = self._lifetime.cached_copy(touched, token)
        if fence is not None:
            await self._cache.set(key, session.without_token(), fence)
        return session, stored.remember_me and touched.expires != stored.expires

    async def fenced(self, token: str, key: str) -> CachedSession:
        """A refill behind a fence taken now (after a write and the drop of the cached copy); SessionEndedError
        when the session has ended meanwhile (a concurrent delete)."""
        fence = (await self._cache.lookup(key))[1]
        session = (await self.refill(token, key, fence))[0]
        if type(session) is not CachedSession:
            raise SessionEndedError()
        return session

    async def _read(self, key: str) -> StoredSession | DeadAnswer:
        """The valid session stored under `key`, or what to answer for it from now on (remembered)."""
        stored = await load_stored_session(key)
        if stored is not None and self._lifetime.is_valid(stored):
            return stored
        if stored is not None and stored.invalidated and stored.expires > self._lifetime.now():
            self._unknown.remember(key, ENDED_BY_LOGIN, until=stored.expires.timestamp())
            return ENDED_BY_LOGIN
        self._unknown.remember(key, UNKNOWN)
        return UNKNOWN
