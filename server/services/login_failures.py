"""LOGIN_FAILED events, stored so that no one can flood the events table with them.

A refused login is stored only when its identifier names a user (what a support desk looks for:
attempts on this customer's account); attempts on identifiers that name nobody are counted in
metrics only, so random identifiers add no rows. Refusals by the login limiter, which an attacker
can repeat without end, are stored at most once per user per rate-limit window: the insert is
conditional on no such event in the last window, and on PostgreSQL it runs with the user row locked
(as a login locks it), so concurrent refusals check one after the other. The limiter's own store was
not used: its counters are per identifier *or* address, live in Redis or in one process, and the
event has to be written where the events are, so one check in one transaction is simpler and exact.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models import SessionEvent, SessionEventType, User
from server.metrics import record_session_events_unstored
from server.services.client_info import kept_address
from server.services.session_events import SessionEventRecord, record_events, recording_transaction
from server.settings import Settings

INVALID_CREDENTIALS = "invalid-credentials"
NOT_VERIFIED = "not-verified"
RATE_LIMITED = "rate-limited"


class LoginFailures:
    """Records refused logins as LOGIN_FAILED events (see the module's docstring for what is stored)."""

    def __init__(self, settings: Settings) -> None:
        self._address_mode = settings.session_client_address
        limit = settings.login_rate_limit
        self._window = timedelta(seconds=limit[1]) if limit is not None else None

    async def record(self, user_id: int | None, reason: str, at: datetime, client_address: str | None) -> None:
        """Record that a login for `user_id` (None: an identifier naming nobody) was refused for `reason`."""
        if user_id is None:
            record_session_events_unstored(SessionEventType.LOGIN_FAILED.value, reason)
            return
        event = SessionEventRecord(
            SessionEventType.LOGIN_FAILED,
            at,
            user_id=user_id,
            ip_address=kept_address(client_address, self._address_mode),
            reason=reason,
        )
        async with recording_transaction() as connection:
            if reason == RATE_LIMITED and self._window is not None:
                # Locked as a login locks it: a second refusal waits here until the first has committed.
                await User.filter(id=user_id).using_db(connection).select_for_update().only("id").first()
                recent = SessionEvent.filter(
                    type=SessionEventType.LOGIN_FAILED, user_id=user_id, reason=RATE_LIMITED, at__gt=at - self._window
                )
                if await recent.using_db(connection).exists():
                    record_session_events_unstored(SessionEventType.LOGIN_FAILED.value, reason)
                    return
            await record_events(connection, [event])
