"""A bounded, in-process LRU session cache for a single server process."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import TypeVar, cast

from server.cache.base import Fence
from server.cached_session import CachedSession, CachedSessionUser

_Part = TypeVar("_Part", bound=Hashable)

#: Deletions remembered for fences at most; a fence older than the oldest one forgotten is refused.
MAX_TOMBSTONES = 10_000


class InMemorySessionCacheStrategy:
    """Keeps at most `max_size` sessions in this process, evicting the least recently used.

    Reads refresh an entry's recency. Whether a copy is still fresh is the guard's question
    (server/cache/guarded.py); a stale one here is overwritten by its refill or evicted. Sessions
    are stored without their raw token, sharing the parts many of them hold alike (`_SharedParts`).

    Every delete and clear advances a version; a fence is the version at its lookup, and a
    fenced write is refused if its key was deleted (or everything cleared) at a later version.
    """

    #: how the guard counts a hit (server/metrics.py)
    answers_from = "first_tier"

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._max_size = max_size
        self._entries: OrderedDict[str, CachedSession] = OrderedDict()
        self._version = 0
        self._cleared_at = 0
        #: key -> version of its last delete, oldest first
        self._tombstones: OrderedDict[str, int] = OrderedDict()
        #: the latest version among tombstones dropped for space
        self._forgotten_up_to = 0
        self._shared = _SharedParts(max_size)

    @property
    def max_size(self) -> int:
        return self._max_size

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        return self._get(key), Fence(self._version, time.monotonic())

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Store `session` as the most recently used entry, then evict down to `max_size`."""
        if fence is not None and not self._holds(key, fence):
            return
        entries = self._entries
        entries[key] = self._shared.stored_copy(session)
        entries.move_to_end(key)
        # Check after inserting: Vendure checks before and so never evicts once full.
        while len(entries) > self._max_size:
            entries.popitem(last=False)

    async def get(self, key: str) -> CachedSession | None:
        """The cached session (token ""), or None if absent."""
        return self._get(key)

    async def delete(self, key: str) -> None:
        """Forget `key`; a missing key is not an error."""
        self.forget([key])

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.forget(keys)

    async def clear(self) -> None:
        """Forget every entry."""
        self.forget_all()

    def forget(self, keys: Sequence[str]) -> None:
        """`delete_many`, callable where nothing can be awaited (an invalidation's callback)."""
        tombstones = self._tombstones
        for key in keys:
            self._entries.pop(key, None)
            self._version += 1
            tombstones[key] = self._version
            tombstones.move_to_end(key)
        while len(tombstones) > MAX_TOMBSTONES:
            self._forgotten_up_to = tombstones.popitem(last=False)[1]

    def forget_all(self) -> None:
        """`clear`, callable where nothing can be awaited."""
        self._entries.clear()
        self._version += 1
        self._cleared_at = self._version
        self._tombstones.clear()
        self._shared.clear()

    async def close(self) -> None:
        """Nothing to release: the entries live in this process only."""

    def _get(self, key: str) -> CachedSession | None:
        entries = self._entries
        session = entries.get(key)
        if session is not None:
            entries.move_to_end(key)
        return session

    def _holds(self, key: str, fence: Fence) -> bool:
        seen = fence.version
        assert isinstance(seen, int)
        return self._cleared_at <= seen and self._forgotten_up_to <= seen and self._tombstones.get(key, 0) <= seen


class _SharedParts:
    """One copy of what many cached sessions hold alike: a user (the same for each of their sessions),
    the permissions per channel (the same for every user holding the same roles) and the name of the
    authentication strategy. They are immutable and shared by equality, so sharing never changes what
    a session says; it saves about 700 bytes per authenticated session of bench/scale.py (a role on two
    channels; see bench/README.md, "Scale").

    At most `limit` parts are remembered: past it, and at a clear (a Channel or Role changed), they
    are forgotten, while the sessions holding them keep them.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: dict[Hashable, Hashable] = {}

    def stored_copy(self, session: CachedSession) -> CachedSession:
        """`session` without its token and key, holding the shared parts."""
        user, strategy = session.user, session.authentication_strategy
        if user is None and strategy is None:  # a guest's: nothing to share
            return session.without_token()
        return dataclasses.replace(
            session,
            token="",
            cache_key="",
            user=None if user is None else self._user(user),
            authentication_strategy=None if strategy is None else self._one(strategy),
        )

    def clear(self) -> None:
        self._parts.clear()

    def _user(self, user: CachedSessionUser) -> CachedSessionUser:
        shared = self._parts.get(user)
        if shared is not None:
            return cast(CachedSessionUser, shared)
        permissions = self._one(user.channel_permissions)
        if permissions is not user.channel_permissions:
            user = dataclasses.replace(user, channel_permissions=permissions)
        return self._one(user)

    def _one(self, part: _Part) -> _Part:
        parts = self._parts
        shared = parts.get(part)
        if shared is None:
            if len(parts) >= self._limit:
                parts.clear()
            parts[part] = shared = part
        return cast(_Part, shared)  # equal to `part`, so of its type
