from __future__ import annotations

from dataclasses import dataclass

from server.cached_session import CachedSession


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a service needs to know of the request it serves: its channel, its session and its client
    (address, as uvicorn derives it honouring FORWARDED_ALLOW_IPS, and user agent)."""

    channel_id: int
    session: CachedSession | None = None
    client_address: str | None = None
    user_agent: str | None = None
