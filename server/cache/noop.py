"""A session cache that caches nothing: every lookup goes to the database.

Useful to measure the database path alone, or when no cache may hold session data at all.
"""

from __future__ import annotations

from server.cached_session import CachedSession


class NoopSessionCacheStrategy:
    """Accepts every call and stores nothing, so `get` always returns None."""

    async def set(self, key: str, session: CachedSession) -> None:
        """Discard `session`."""

    async def get(self, key: str) -> CachedSession | None:
        """Always a miss."""
        return None

    async def delete(self, key: str) -> None:
        """Nothing is stored, so nothing to delete."""

    async def clear(self) -> None:
        """Nothing is stored, so nothing to clear."""

    async def close(self) -> None:
        """No resources are held."""
