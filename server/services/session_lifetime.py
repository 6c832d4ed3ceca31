"""When a session ends, and how long a cached copy of it may be trusted.

A session starts with `expires = now + SESSION_DURATION` and slides: once less than half of the
duration is left, a read pushes `expires` to now + SESSION_DURATION (so writes are bounded to about
one per half-lifetime). SESSION_MAX_LIFETIME, when set, ends it at `created_at + lifetime` however
active it is. `last_active_at` is kept current to LAST_ACTIVE_RESOLUTION.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from server.services.stored_session import StoredSession
from server.settings import Settings

#: How stale `last_active_at` may get before a read refreshes it (bounds writes to ~one a day).
LAST_ACTIVE_RESOLUTION = timedelta(days=1)


class SessionLifetime:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._duration = timedelta(seconds=settings.session_duration)
        lifetime = settings.session_max_lifetime
        self._max_lifetime = None if lifetime is None else timedelta(seconds=lifetime)
        self._cache_ttl = settings.session_cache_ttl
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def first_expiry(self, now: datetime) -> datetime:
        if self._max_lifetime is None:
            return now + self._duration
        return now + min(self._duration, self._max_lifetime)

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

    def touched(self, stored: StoredSession) -> dict[str, datetime]:
        """The columns a read now must write: a slid `expires`, a refreshed `last_active_at`, or none."""
        now = self.now()
        changes: dict[str, datetime] = {}
        if now >= self._extension_due(stored):
            end = self._absolute_end(stored)
            changes["expires"] = now + self._duration if end is None else min(now + self._duration, end)
        if changes or now - stored.last_active_at >= LAST_ACTIVE_RESOLUTION:
            changes["last_active_at"] = now
        return changes

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
