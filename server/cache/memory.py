"""A bounded, in-process LRU session cache for a single server process."""

from __future__ import annotations

import time
from collections import OrderedDict

from server.cached_session import CachedSession


class InMemorySessionCacheStrategy:
    """Keeps at most `max_size` sessions in this process, evicting the least recently used.

    Reads refresh an entry's recency; an entry whose `cache_expiry` has passed is dropped on
    read and never returned. Sessions are stored without their raw token.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._max_size = max_size
        self._entries: OrderedDict[str, CachedSession] = OrderedDict()

    @property
    def max_size(self) -> int:
        return self._max_size

    def __len__(self) -> int:
        return len(self._entries)

    async def set(self, key: str, session: CachedSession) -> None:
        """Store `session` as the most recently used entry, then evict down to `max_size`."""
        entries = self._entries
        entries[key] = session.without_token()
        entries.move_to_end(key)
        # Check after inserting: Vendure checks before and so never evicts once full.
        while len(entries) > self._max_size:
            entries.popitem(last=False)

    async def get(self, key: str) -> CachedSession | None:
        """The cached session (token ""), or None if absent or past its `cache_expiry`."""
        entries = self._entries
        session = entries.get(key)
        if session is None:
            return None
        if session.cache_expiry <= time.time():
            del entries[key]
            return None
        entries.move_to_end(key)
        return session

    async def delete(self, key: str) -> None:
        """Forget `key`; a missing key is not an error."""
        self._entries.pop(key, None)

    async def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    async def close(self) -> None:
        """Nothing to release: the entries live in this process only."""
