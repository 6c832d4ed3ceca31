"""A session cache that caches nothing: every lookup goes to the database.

Useful to measure the database path alone, or when no cache may hold session data at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.cache.base import Fence
from server.cached_session import CachedSession

_NOTHING_TO_GUARD = Fence(None, 0.0)


class NoopSessionCacheStrategy:
    """Accepts every call and stores nothing, so `get` always returns None."""

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        """Always a miss; its fence guards nothing, since nothing is ever stored."""
        return None, _NOTHING_TO_GUARD

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Discard `session`."""

    async def get(self, key: str) -> CachedSession | None:
        """Always a miss."""
        return None

    async def delete(self, key: str) -> None:
        """Nothing is stored, so nothing to delete."""

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Nothing is stored, so nothing to delete."""

    async def clear(self) -> None:
        """Nothing is stored, so nothing to clear."""

    async def close(self) -> None:
        """No resources are held."""
