"""When a session ends, and how long a cached copy of it may be trusted.

A session starts with `expires = now + SESSION_DURATION` and slides: once less than half of the
duration is left, a read pushes `expires` to now + SESSION_DURATION (so writes are bounded to about
one per half-lifetime). SESSION_MAX_LIFETIME, when set, ends it at `created_at + lifetime` however
active it is. `last_active_at` (any use, for the clean job's idle test) is kept current to
LAST_ACTIVE_RESOLUTION; `seen_at` (use by requests presenting the token as their own credential, the
API's lastActiveAt) to SESSION_ACTIVITY_RESOLUTION. A session made for another user (impersonation)
ends at `created_at + IMPERSONATION_MAX_LIFETIME` at the latest: sliding never takes it past that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from server.cached_session import CachedSession
from server.services.stored_session import StoredSession
from server.settings import Settings

#: How stale `last_active_at` may get before a read refreshes it (bounds writes to ~one a day).
LAST_ACTIVE_RESOLUTION = timedelta(days=1)


class SessionLifetime:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._duration = timedelta(seconds=settings.session_duration)
        lifetime = settings.session_max_lifetime
        self._max_lifetime = None if lifetime is None else timedelta(seconds=lifetime)
        self._impersonation_lifetime = timedelta(seconds=settings.impersonation_max_lifetime)
        self._cache_ttl = settings.session_cache_ttl
        self._activity_resolution = timedelta(seconds=settings.session_activity_resolution)
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def first_expiry(self, now: datetime, impersonated: bool = False) -> datetime:
        lifetimes = [self._duration]
        if self._max_lifetime is not None:
            lifetimes.append(self._max_lifetime)
        if impersonated:
            lifetimes.append(self._impersonation_lifetime)
        return now + min(lifetimes)

    def is_valid(self, stored: StoredSession) -> bool:
        now = self.now()
        end = self._absolute_end(stored)
        return not stored.invalidated and stored.expires > now and (end is None or end > now)

    def cached_until(self, stored: StoredSession) -> tuple[float, datetime]:
        """The `cache_expiry` and `expires` of a copy serialized now.

        The copy is trusted for SESSION_CACHE_TTL, but never past the moment its expiry is due to slide,
        so an active session is always re-read (and extended) before it can lapse, and never past the
        end of its SESSION_MAX_LIFETIME.
        """
        due = min(self._extension_due(stored), stored.last_active_at + LAST_ACTIVE_RESOLUTION)
        expires = stored.expires
        end = self._absolute_end(stored)
        if end is not None:
            due, expires = min(due, end), min(expires, end)
        return min(self._clock() + self._cache_ttl, due.timestamp()), expires

    def cached_copy(self, stored: StoredSession, token: str = "") -> CachedSession:
        """`stored` as the API returns it and the cache keeps it, trusted until `cached_until`."""
        cache_expiry, expires = self.cached_until(stored)
        return CachedSession(
            cache_expiry=cache_expiry,
            id=stored.id,
            token=token,
            expires=expires,
            active_order_id=stored.active_order_id,
            authentication_strategy=stored.authentication_strategy,
            user=stored.user,
            active_channel_id=stored.active_channel_id,
            authenticated_at=stored.authenticated_at,
            impersonator_id=stored.impersonator_id,
            activity_due=self.activity_due(stored),
            cache_key=stored.token_hash,
        )

    def touched(self, stored: StoredSession, seen: bool = False) -> dict[str, datetime]:
        """The columns a read now must write: a slid `expires`, a refreshed `last_active_at`, and (for a
        request presenting the token as its own credential, `seen`) a refreshed `seen_at`; or none."""
        now = self.now()
        changes: dict[str, datetime] = {}
        if now >= self._extension_due(stored):
            end = self._absolute_end(stored)
            changes["expires"] = now + self._duration if end is None else min(now + self._duration, end)
        if seen and self.activity_due(stored) <= now.timestamp():
            changes["seen_at"] = now
        if changes or now - stored.last_active_at >= LAST_ACTIVE_RESOLUTION:
            changes["last_active_at"] = now
        return changes

    def activity_due(self, stored: StoredSession) -> float:
        """When (Unix seconds) a request presenting the token as its own credential next refreshes `seen_at`."""
        if stored.seen_at is None:
            return 0.0
        return (stored.seen_at + self._activity_resolution).timestamp()

    def seen_before(self) -> datetime:
        """A `seen_at` older than this is due for a refresh."""
        return self.now() - self._activity_resolution

    def _absolute_end(self, stored: StoredSession) -> datetime | None:
        """When SESSION_MAX_LIFETIME (or, for an impersonation, IMPERSONATION_MAX_LIFETIME) ends the
        session however active it is; None without such a limit."""
        if stored.created_at is None:
            return None
        lifetimes = [] if self._max_lifetime is None else [self._max_lifetime]
        if stored.impersonator_id is not None:
            lifetimes.append(self._impersonation_lifetime)
        return stored.created_at + min(lifetimes) if lifetimes else None

    def _extension_due(self, stored: StoredSession) -> datetime:
        end = self._absolute_end(stored)
        if end is not None and stored.expires >= end:
            return end  # it cannot slide past its absolute end, so no extension is ever due
        return stored.expires - self._duration / 2
