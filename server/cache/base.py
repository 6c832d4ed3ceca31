"""The interface every session cache strategy implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.cached_session import CachedSession


class SessionCacheStrategy(Protocol):
    """Keyed by the SHA-256 digest of a token; values never carry the raw token.

    Any call may raise or be slow: the session service bounds and tolerates each one.
    """

    async def set(self, key: str, session: CachedSession) -> None: ...

    async def get(self, key: str) -> CachedSession | None: ...

    async def delete(self, key: str) -> None: ...

    async def clear(self) -> None:
        """Forget every session cached by this service (cheap on a shared cache)."""
        ...

    async def close(self) -> None: ...
