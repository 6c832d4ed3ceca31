"""The interface every session cache strategy implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from server.cached_session import CachedSession

#: A refill slower than this (from its lookup to its write) is not written back: a shared cache
#: remembers a deletion for `TOMBSTONE_SECONDS` only, so an older fence could miss one.
MAX_REFILL_SECONDS = 30.0
#: How long a shared cache remembers that a key was deleted (well beyond MAX_REFILL_SECONDS).
TOMBSTONE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Fence:
    """What a lookup saw of a key before the database was read to refill it.

    A refill writes its copy back only if no delete of the key and no clear happened since the
    fence was taken: a session deleted while its refill was reading must never be cached again.
    """

    version: object
    #: time.monotonic() when the lookup was made
    taken_at: float


class SessionCacheStrategy(Protocol):
    """Keyed by the SHA-256 digest of a token; values never carry the raw token.

    Any call may raise or be slow: the session service bounds and tolerates each one.
    """

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        """The cached session (or None) and a fence for refilling it (None: do not refill)."""
        ...

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        """Store `session`; with a fence, only if `key` was neither deleted nor cleared since it was taken."""
        ...

    async def get(self, key: str) -> CachedSession | None: ...

    async def delete(self, key: str) -> None:
        """Forget `key` and void every fence taken on it before."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """`delete` of each key, in as few round trips as the cache allows."""
        ...

    async def clear(self) -> None:
        """Forget every session cached by this service (cheap on a shared cache) and void every fence."""
        ...

    async def close(self) -> None: ...
