"""Where a session is used from: lastActiveAt (seen_at), the client's address and user agent, recorded at
creation and refreshed at most once per SESSION_ACTIVITY_RESOLUTION, only by requests presenting the token
as their own credential. Statements are counted (tests/services/support.py, QueryLog); no time is measured."""

from __future__ import annotations

from datetime import datetime

from models import Session
from server.services.client_info import ClientInfo
from server.services.request_context import RequestContext
from server.services.stored_session import load_stored_session
from tests.services.support import Kit, KitFactory, QueryLog, make_user

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PHONE = ClientInfo("198.51.100.23", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148")
LAPTOP = ClientInfo("203.0.113.77", FIREFOX)
RESOLUTION = 300.0


async def _row(session_id: int) -> tuple[datetime | None, str | None, str | None]:
    row = await Session.get(id=session_id).values("seen_at", "client_address", "user_agent")
    return row["seen_at"], row["client_address"], row["user_agent"]


async def test_create_anonymous_session_records_its_client_in_its_one_insert(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    session = await kit.sessions.create_anonymous_session(None, LAPTOP)

    assert queries.count == 1 and len(queries.writes()) == 1, queries.statements
    assert await _row(session.id) == (kit.clock.at(), "203.0.113.0", FIREFOX)
    assert session.activity_due == kit.clock.now + RESOLUTION


async def test_a_login_records_its_client_and_when_the_password_was_proved(kit: Kit) -> None:
    user = await make_user("alice")
    ctx = RequestContext(channel_id=(await kit.default_channel()).id, client_address="::1", user_agent=FIREFOX)

    proved = await kit.sessions.create_new_authenticated_session(ctx, user, "native", proved=True)
    made = await kit.sessions.create_new_authenticated_session(ctx, user, "sso")

    assert (proved.authenticated_at, made.authenticated_at) == (kit.clock.at(), None)
    assert await _row(proved.id) == (kit.clock.at(), "::", FIREFOX)


async def test_activity_is_written_at_most_once_per_resolution(kit: Kit, queries: QueryLog) -> None:
    # given a session created now from the laptop
    session = await kit.sessions.create_anonymous_session(None, LAPTOP)
    created = kit.clock.at()

    # within the resolution, its own requests are cache hits: no statement at all
    kit.clock.advance(RESOLUTION - 1)
    queries.clear()
    for _ in range(3):
        assert (await kit.sessions.resolve_token(session.token, PHONE))[0] is not None
    assert queries.statements == []
    assert await _row(session.id) == (created, "203.0.113.0", FIREFOX)

    # once it has passed, the first request reads the row and writes once; the next ones hit the cache again
    kit.clock.advance(1)
    queries.clear()
    for _ in range(3):
        assert (await kit.sessions.resolve_token(session.token, PHONE))[0] is not None
    assert len(queries.writes()) == 1 and queries.count == 2, queries.statements
    assert await _row(session.id) == (kit.clock.at(), "198.51.100.0", PHONE.user_agent)


async def test_lookups_for_another_backend_never_record_activity(make_kit: KitFactory, queries: QueryLog) -> None:
    # given a session whose activity is due, with a copy cached for longer than the resolution
    kit = make_kit(session_cache_ttl=RESOLUTION * 10)
    session = await kit.sessions.create_anonymous_session(None, LAPTOP)
    created = kit.clock.at()
    kit.clock.advance(RESOLUTION * 2)
    queries.clear()

    # when backends look it up by token (sessionFromToken), many times
    for _ in range(3):
        assert await kit.sessions.get_session_from_token(session.token) is not None

    # then the cached copy serves them all, and nothing about its activity changes
    assert queries.statements == []
    assert await _row(session.id) == (created, "203.0.113.0", FIREFOX)


async def test_a_refill_for_another_backend_leaves_activity_to_the_owner(kit: Kit, queries: QueryLog) -> None:
    session = await kit.sessions.create_anonymous_session(None, LAPTOP)
    created = kit.clock.at()
    kit.cache.entries.clear()
    kit.clock.advance(RESOLUTION * 10)
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None and queries.writes() == [], queries.statements
    assert await _row(session.id) == (created, "203.0.113.0", FIREFOX)


async def test_of_two_requests_racing_on_a_due_session_only_the_first_writes(
    make_kit: KitFactory, queries: QueryLog
) -> None:
    # given a session whose activity is due, and a second instance that has read its row already
    first, second = make_kit(), make_kit()
    session = await first.sessions.create_anonymous_session(None, LAPTOP)
    first.clock.advance(RESOLUTION)
    read_by_second = await load_stored_session(session.cache_key)
    assert read_by_second is not None

    # when the first instance records the activity, then the second one tries with what it read
    assert (await first.sessions.resolve_token(session.token, PHONE))[0] is not None
    first.clock.advance(1)
    await second.sessions._activity.touch(read_by_second, LAPTOP)

    # then the second write matched nothing: one activity change per period
    assert await _row(session.id) == (first.clock.at(-1), "198.51.100.0", PHONE.user_agent)


async def test_settings_decide_what_is_kept(make_kit: KitFactory) -> None:
    full = make_kit(session_client_address="full", session_user_agent_max=12)
    off = make_kit(session_client_address="off")

    kept = await full.sessions.create_anonymous_session(None, LAPTOP)
    dropped = await off.sessions.create_anonymous_session(None, LAPTOP)

    assert await _row(kept.id) == (full.clock.at(), "203.0.113.77", FIREFOX[:12])
    assert await _row(dropped.id) == (off.clock.at(), None, FIREFOX)
