"""The hot path in queries: a cache hit touches no database, a miss is one round trip.

Queries are counted from the "tortoise.db_client" logger, on which Tortoise's clients log every
statement they execute (see tests/services/support.py, QueryLog). No time is measured.
"""

from __future__ import annotations

from models import Channel, Permission, Session
from tests.services.support import Kit, KitFactory, QueryLog, login_with_two_roles

P = Permission


async def test_the_query_log_counts_each_statement(kit: Kit, queries: QueryLog) -> None:
    # the counter itself: one SELECT, one INSERT, one joined SELECT
    queries.clear()

    await Session.filter(id=1).first()
    await Channel.create(code="eu", token="eu")
    await Session.filter(user__roles__channels__code="eu").values("id", "user__roles__permissions")

    assert queries.count == 3
    assert len(queries.writes()) == 1
    assert "INSERT" in queries.statements[1].upper()


async def test_cache_hit_runs_no_query(kit: Kit, queries: QueryLog) -> None:
    session = await login_with_two_roles(kit)
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found == session
    assert queries.statements == []


async def test_cache_miss_of_an_authenticated_session_runs_one_query(kit: Kit, queries: QueryLog) -> None:
    # given an admin's session that is not in the cache
    session = await login_with_two_roles(kit)
    kit.cache.entries.clear()
    queries.clear()

    # when it is looked up
    found = await kit.sessions.get_session_from_token(session.token)

    # then session, user, roles and channels came back in one SELECT
    assert found == session
    assert found is not None and found.user is not None and len(found.user.channel_permissions) == 3
    assert queries.count == 1, queries.statements
    assert queries.statements[0].lstrip().upper().startswith("SELECT")


async def test_cache_miss_of_an_anonymous_session_runs_one_query(kit: Kit, queries: QueryLog) -> None:
    session = await kit.sessions.create_anonymous_session()
    kit.cache.entries.clear()
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found == session
    assert queries.count == 1, queries.statements


async def test_stale_cached_copy_is_reread_in_one_query(kit: Kit, queries: QueryLog) -> None:
    session = await login_with_two_roles(kit)
    kit.clock.advance(kit.settings.session_cache_ttl + 1)
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert queries.count == 1, queries.statements


async def test_unknown_token_costs_one_query(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    assert await kit.sessions.get_session_from_token("x" * 43) is None
    assert queries.count == 1, queries.statements


async def test_miss_with_an_extension_due_adds_exactly_one_write(make_kit: KitFactory, queries: QueryLog) -> None:
    kit = make_kit(session_duration=100, session_cache_ttl=10)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(60)
    queries.clear()

    await kit.sessions.get_session_from_token(session.token)

    assert queries.count == 2, queries.statements
    assert len(queries.writes()) == 1
    assert queries.writes()[0].lstrip().upper().startswith("UPDATE")
