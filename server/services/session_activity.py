"""Where and when a session is used, as its row records it: the columns a new session starts with,
and the write a read makes when the session slides or its activity is due (see SessionLifetime)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from models import Session
from server.services.client_info import ClientInfo
from server.services.session_lifetime import SessionLifetime
from server.services.stored_session import StoredSession
from server.settings import Settings


class SessionActivity:
    def __init__(self, settings: Settings, lifetime: SessionLifetime) -> None:
        self._settings = settings
        self._lifetime = lifetime

    def first_columns(self, now: datetime, client: ClientInfo | None, impersonated: bool = False) -> dict[str, Any]:
        """The lifetime and origin columns of a session created `now` by a request from `client`
        (`impersonated`: made for another user, its lifetime capped)."""
        address, user_agent = (client or ClientInfo()).kept(self._settings)
        return {
            "created_at": now,
            "expires": self._lifetime.first_expiry(now, impersonated),
            "last_active_at": now,
            "seen_at": now,
            "client_address": address,
            "user_agent": user_agent,
        }

    async def touch(self, stored: StoredSession, client: ClientInfo | None = None) -> StoredSession:
        """Write what a read of `stored` now must (a slid expiry, refreshed activity; `client` is given for
        a request presenting the token as its own credential); the session as it then is."""
        changes = self._lifetime.touched(stored, seen=client is not None)
        if not changes:
            return stored
        query = Session.filter(id=stored.id)
        if client is not None and "seen_at" in changes:
            # One activity write per session per SESSION_ACTIVITY_RESOLUTION: of the requests that read
            # the same stale `seen_at` (on any instance), only the first one's write matches.
            query = query.filter(Q(seen_at__isnull=True) | Q(seen_at__lte=self._lifetime.seen_before()))
            address, user_agent = client.kept(self._settings)
            await query.update(**changes, client_address=address, user_agent=user_agent)
        else:
            await query.update(**changes)
        return replace(
            stored,
            expires=changes.get("expires", stored.expires),
            last_active_at=changes["last_active_at"],
            seen_at=changes.get("seen_at", stored.seen_at),
        )
