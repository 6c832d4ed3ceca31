"""Fresh proof: whether the caller proved their password recently enough for a sensitive operation.

A session's `authenticated_at` is set by login and reauthenticate only (None for guests and for sessions
made by createNewAuthenticatedSession). A proof counts as fresh while it is at most SESSION_FRESH_AGE
old; an operation that demands one checks the caller's permission first, then this. The rule needs
nothing but `authenticated_at`, which sessionFromToken returns, so other services apply it alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from server.cached_session import CachedSession
from server.services.errors import FreshAuthenticationRequiredError
from server.settings import Settings


class FreshProof:
    def __init__(self, settings: Settings, now: Callable[[], datetime]) -> None:
        """`now` is the session service's clock (see SessionService.now)."""
        self._max_age = timedelta(seconds=settings.session_fresh_age)
        self._now = now

    def is_fresh(self, session: CachedSession | None) -> bool:
        """Whether `session` holds a password proof no older than SESSION_FRESH_AGE."""
        if session is None or session.authenticated_at is None:
            return False
        return self._now() - session.authenticated_at <= self._max_age

    def check(self, session: CachedSession | None) -> None:
        """FORBIDDEN with reason FRESH_AUTHENTICATION_REQUIRED unless `session`'s proof is fresh."""
        if not self.is_fresh(session):
            raise FreshAuthenticationRequiredError()
