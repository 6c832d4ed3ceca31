from __future__ import annotations

from dataclasses import dataclass

from server.services.cached_session import CachedSession


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a service needs to know of the request it serves: its channel and its session."""

    channel_id: int
    session: CachedSession | None = None
