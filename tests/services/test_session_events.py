"""Session events at the service level, on both backends: written in the transaction of the change they
record (a change that fails leaves no event, an event that cannot be written undoes its change), what is
not stored (guests), the clean job's EXPIRED events and retention, and the cap on live sessions per user."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.exceptions import OperationalError

from models import Session, SessionEvent, SessionEventType, User
from server.cached_session import CachedSession
from server.services import UserService
from server.services.actor import Actor
from server.services.errors import SessionEndedError
from server.services.login_failures import INVALID_CREDENTIALS, RATE_LIMITED, LoginFailures
from server.services.session_events import SessionEventRecord, log_line, record_events
from server.settings import Settings
from tests.conftest import Backend
from tests.services.support import Kit, KitFactory, make_order, make_user

REVOKED = SessionEventType.REVOKED
#: What a statement refused by `refused` raises: Tortoise's error on SQLite, asyncpg's on PostgreSQL.
REFUSED = (OperationalError, asyncpg.exceptions.RaiseError)


async def _events(**conditions: Any) -> list[tuple[Any, ...]]:
    """(type, reason, session_id, user_id, actor_id) of the stored events, in the order they were written."""
    rows = await SessionEvent.filter(**conditions).order_by("id")
    return [(SessionEventType(row.type), row.reason, row.session_id, row.user_id, row.actor_id) for row in rows]


@asynccontextmanager
async def refused(backend: Backend, table: str, operation: str) -> AsyncIterator[None]:
    """While the block runs, the database refuses every `operation` (INSERT, DELETE) on `table`, inside
    whatever transaction runs it: a trigger, so the failure comes after the statements before it."""
    db = Session._meta.db
    name = f"refuse_{operation.lower()}_{table}"
    if backend.is_postgres:
        await db.execute_script(
            f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ "
            f"LANGUAGE plpgsql; CREATE TRIGGER {name} BEFORE {operation} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}();"
        )
    else:
        await db.execute_script(
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        )
    try:
        yield
    finally:
        if backend.is_postgres:
            await db.execute_script(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();")
        else:
            await db.execute_script(f"DROP TRIGGER {name};")


async def test_a_login_is_recorded_with_its_session_and_user(kit: Kit) -> None:
    alice = await make_user("alice")
    session = await kit.login(alice)
    api = await kit.sessions.create_new_authenticated_session(await kit.ctx(), alice, "sso")
    assert await _events() == [
        (SessionEventType.LOGIN, "api", session.id, alice.id, None),  # kit.login does not prove a password
        (SessionEventType.LOGIN, "api", api.id, alice.id, None),
    ]


async def test_a_merged_guest_order_is_recorded_with_the_login(kit: Kit) -> None:
    alice = await make_user("alice")
    guest = await kit.sessions.create_anonymous_session((await kit.default_channel()).id)
    order = await make_order("guest-cart", created_by_session_id=guest.id)
    guest = await kit.sessions.set_active_order(guest, order)

    session = await kit.login(alice, guest)

    assert await _events() == [
        (SessionEventType.LOGIN, "api", session.id, alice.id, None),
        (SessionEventType.ORDER_MERGED, "adopted", session.id, alice.id, None),
    ]


async def test_logout_is_recorded_and_a_guest_session_is_not(kit: Kit) -> None:
    alice = await make_user("alice")
    session = await kit.login(alice)
    guest = await kit.sessions.create_anonymous_session()

    assert await kit.sessions.delete_session(session)
    assert await kit.sessions.delete_session(guest)

    assert await _events(type=SessionEventType.LOGOUT) == [
        (SessionEventType.LOGOUT, "logout", session.id, alice.id, None)
    ]
    assert await SessionEvent.filter(session_id=guest.id).count() == 0


async def test_a_logout_whose_event_cannot_be_written_ends_nothing(kit: Kit, backend: Backend) -> None:
    # given a logged-in session
    alice = await make_user("alice")
    session = await kit.login(alice)

    # when its logout fails on the event's insert
    async with refused(backend, "session_events", "INSERT"):
        with pytest.raises(REFUSED):
            await kit.sessions.delete_session(session)

    # then the session was not ended: the delete rolled back with the event
    assert await kit.sessions.get_session_from_token(session.token) is not None
    assert await Session.filter(id=session.id).exists()


async def test_a_user_deletion_that_fails_after_its_sessions_ended_leaves_no_event(
    kit: Kit, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # given alice with a session, and an administrator
    users = UserService(kit.sessions)
    alice = await make_user("alice")
    session = await kit.login(alice)
    before = await _events()

    # when deleting her fails on the user row, after her sessions were deleted and their ends recorded
    with caplog.at_level(logging.INFO, logger="server.session_events"):
        async with refused(backend, "users", "DELETE"):
            with pytest.raises(REFUSED):
                await users.delete(alice.id, actor=Actor(user_id=1))

    # then neither the deletion nor its events remain, nor a log line telling of them
    assert [record for record in caplog.records if record.name == "server.session_events"] == []
    assert await User.filter(id=alice.id).exists()
    assert await kit.sessions.get_session_from_token(session.token) is not None
    assert await _events() == before


async def test_a_login_that_fails_after_its_session_was_made_leaves_no_event(
    make_kit: KitFactory, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # given alice at a cap of one session: her next login ends one, after its LOGIN event is written
    kit = make_kit(session_limit_per_user=1)
    alice = await make_user("alice")
    await kit.login(alice)
    before = (await _events(), await Session.filter(user_id=alice.id).count())

    # when that delete fails, inside the login's transaction
    with caplog.at_level(logging.INFO, logger="server.session_events"):
        async with refused(backend, "sessions", "DELETE"):
            with pytest.raises(REFUSED):
                await kit.login(alice)

    # then the login left nothing: no session, no LOGIN event, no log line of one
    assert [record for record in caplog.records if record.name == "server.session_events"] == []
    assert (await _events(), await Session.filter(user_id=alice.id).count()) == before


async def test_user_deletion_and_password_changes_record_who_and_why(kit: Kit) -> None:
    users = UserService(kit.sessions)
    alice, bob = await make_user("alice"), await make_user("bob")
    alice_session, bob_session = await kit.login(alice), await kit.login(bob)
    admin = Actor(user_id=99)

    await users.update(alice.id, password="new secret", actor=Actor({1: frozenset()}, 99))
    await users.delete(bob.id, actor=admin)

    assert (await _events(type=SessionEventType.PASSWORD_CHANGED)) == [
        (SessionEventType.PASSWORD_CHANGED, None, None, alice.id, 99)
    ]
    assert await _events(type=REVOKED) == [
        (REVOKED, "password-changed", alice_session.id, alice.id, 99),
        (REVOKED, "user-deleted", bob_session.id, bob.id, 99),
    ]


async def test_ending_sessions_by_user_or_order_records_the_actor(kit: Kit) -> None:
    alice = await make_user("alice")
    own, by_admin = await kit.login(alice), await kit.login(alice)
    assert await kit.sessions.delete_sessions_by_user(alice.id, actor_id=alice.id) == 2
    third = await kit.login(alice)
    assert await kit.sessions.delete_sessions_by_user(alice.id, actor_id=7) == 1
    order = await make_order("cart", user=alice)
    fourth = await kit.sessions.set_active_order(await kit.login(alice), order)
    assert await kit.sessions.delete_sessions_by_active_order_id(order.id, actor_id=7) == 1

    assert await _events(type=REVOKED) == [
        (REVOKED, "revoked-by-owner", own.id, alice.id, None),
        (REVOKED, "revoked-by-owner", by_admin.id, alice.id, None),
        (REVOKED, "revoked-by-admin", third.id, alice.id, 7),
        (REVOKED, "order-deleted", fourth.id, alice.id, 7),
    ]


async def test_the_clean_job_records_expired_user_sessions_and_only_counts_guests(kit: Kit) -> None:
    alice = await make_user("alice")
    session = await kit.login(alice)
    await kit.sessions.create_anonymous_session()
    kit.clock.advance(kit.settings.session_duration + 1)

    assert await kit.sessions.clean_expired_sessions() == 2

    assert await _events(type=SessionEventType.EXPIRED) == [
        (SessionEventType.EXPIRED, "expired", session.id, alice.id, None)
    ]


async def test_the_clean_job_removes_events_past_their_retention_in_batches(make_kit: KitFactory) -> None:
    # given five events older than the retention period and one within it
    kit = make_kit(session_event_retention=3600.0)
    old = [SessionEventRecord(SessionEventType.LOGOUT, kit.clock.at(-7200 - n), user_id=1) for n in range(5)]
    recent = SessionEventRecord(SessionEventType.LOGOUT, kit.clock.at(-60), user_id=1, reason="recent")
    await record_events(SessionEvent._meta.db, [*old, recent])

    # when the clean job runs one batch of two, then drains the rest
    await kit.sessions.clean_expired_sessions(batch_size=2)
    after_one_batch = await SessionEvent.all().count()
    await kit.sessions.drain_expired_sessions(batch_size=2)

    # then a batch removed two (the oldest), and draining left only the recent one
    assert after_one_batch == 4
    assert [row.reason for row in await SessionEvent.all()] == ["recent"]


async def test_a_login_beyond_the_cap_ends_the_oldest_session_at_once(make_kit: KitFactory) -> None:
    # given alice at the cap of two live sessions, both cached
    kit = make_kit(session_limit_per_user=2)
    alice = await make_user("alice")
    oldest, newer = await kit.login(alice), await kit.login(alice)
    assert await kit.sessions.get_session_from_token(oldest.token) is not None

    # when she logs in a third time
    newest = await kit.login(alice)

    # then the oldest ended, in the database and the cache, recorded as REVOKED "session-limit"
    assert await kit.sessions.get_session_from_token(oldest.token) is None
    for kept in (newer, newest):
        assert await kit.sessions.get_session_from_token(kept.token) is not None
    assert await _events(type=REVOKED) == [(REVOKED, "session-limit", oldest.id, alice.id, None)]


async def test_only_the_users_own_live_sessions_count_toward_the_cap(make_kit: KitFactory) -> None:
    # given alice at the cap of two, counting only sessions that are expired, ended or impersonations
    alice = await make_user("alice")
    before = make_kit(session_limit_per_user=10)
    expired, ended, visited = [await before.login(alice) for _ in range(3)]
    kit = make_kit(session_limit_per_user=2)
    await Session.filter(id=expired.id).update(expires=kit.clock.at(-1))
    await Session.filter(id=ended.id).update(invalidated=True)
    await Session.filter(id=visited.id).update(impersonator_id=(await make_user("support")).id)

    # when she logs in twice
    first, second = await kit.login(alice), await kit.login(alice)

    # then both stay, and nothing was ended for the cap; a third ends the older of her own live ones
    for kept in (first, second):
        assert await kit.sessions.get_session_from_token(kept.token) is not None
    assert await _events(type=REVOKED) == []
    await kit.login(alice)
    assert await _events(type=REVOKED) == [(REVOKED, "session-limit", first.id, alice.id, None)]


async def test_concurrent_logins_never_leave_more_than_the_cap(make_kit: KitFactory) -> None:
    kit = make_kit(session_limit_per_user=3)
    alice = await make_user("alice")

    # when eight logins run at once (a login whose session a later one ended before it was read back
    # fails with SessionEndedError, which login answers as refused credentials)
    outcomes = await asyncio.gather(*(kit.login(alice) for _ in range(8)), return_exceptions=True)

    # then exactly three sessions live, and each of the five others was ended as "session-limit"
    made = [outcome for outcome in outcomes if isinstance(outcome, CachedSession)]
    assert all(isinstance(outcome, CachedSession | SessionEndedError) for outcome in outcomes)
    live = [session for session in made if await kit.sessions.get_session_from_token(session.token)]
    assert len(live) == 3
    assert await Session.filter(user_id=alice.id).count() == 3
    assert await SessionEvent.filter(type=REVOKED, reason="session-limit").count() == 5


async def test_each_stored_event_is_one_log_line_without_secrets(kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    alice = await make_user("alice")
    with caplog.at_level(logging.INFO, logger="server.session_events"):
        session = await kit.login(alice)
    lines = [record.getMessage() for record in caplog.records if record.name == "server.session_events"]
    event = SessionEventRecord(SessionEventType.LOGIN, kit.clock.at(), session.id, alice.id, reason="api")
    assert lines == [log_line(event)]
    assert lines[0] == f"event=LOGIN at=2100-01-01T00:00:00+00:00 session_id={session.id} user_id={alice.id} reason=api"
    assert session.token not in lines[0] and session.cache_key not in lines[0]


async def test_rate_limited_refusals_are_stored_once_per_window_and_unknown_users_never(kit: Kit) -> None:
    # given refusals recorded with a rate-limit window of a minute
    failures = LoginFailures(Settings(login_rate_limit=(3, 60.0)))
    alice = await make_user("alice")
    start = kit.clock.at()

    # when alice is refused by the limiter four times within the window, and again once it has passed,
    # concurrently twice in a new window, and an unknown identifier is refused too
    for offset in (0, 1, 30, 59.9, 60.5):
        await failures.record(alice.id, RATE_LIMITED, start + timedelta(seconds=offset), "203.0.113.9")
    later = start + timedelta(seconds=200)
    await asyncio.gather(*(failures.record(alice.id, RATE_LIMITED, later, None) for _ in range(4)))
    await failures.record(None, RATE_LIMITED, start, "203.0.113.9")
    await failures.record(None, INVALID_CREDENTIALS, start, "203.0.113.9")

    # then one refusal per window is stored, with the address as SESSION_CLIENT_ADDRESS keeps it
    rows = await SessionEvent.all().order_by("id")
    assert [(row.at, row.user_id, row.reason) for row in rows] == [
        (start, alice.id, RATE_LIMITED),
        (start + timedelta(seconds=60.5), alice.id, RATE_LIMITED),
        (later, alice.id, RATE_LIMITED),
    ]
    assert [row.ip_address for row in rows] == ["203.0.113.0", "203.0.113.0", None]
