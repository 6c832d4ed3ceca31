"""SessionService: creating anonymous sessions and resolving tokens (cache first, then the database)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from models import Session, SessionType
from server.services.tokens import MAX_TOKEN_LENGTH, token_digest
from tests.services.support import Kit, KitFactory, QueryLog

URL_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43,}$")


async def test_anonymous_session_token_is_url_safe_and_at_least_43_chars(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    assert URL_SAFE_TOKEN.match(session.token), session.token


async def test_anonymous_session_tokens_are_unique(kit: Kit) -> None:
    tokens = {(await kit.sessions.create_anonymous_session()).token for _ in range(200)}

    assert len(tokens) == 200
    assert await Session.all().count() == 200


async def test_only_the_sha256_digest_of_the_token_is_stored(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    rows = await Session.all().values()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(session.token.encode()).hexdigest()
    assert all(session.token not in str(value) for value in rows[0].values())


async def test_anonymous_session_expires_after_session_duration(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    stored = await Session.get(id=session.id)
    expected = kit.clock.at() + timedelta(seconds=kit.settings.session_duration)
    assert session.expires == expected
    assert stored.expires == expected
    assert stored.type == SessionType.ANONYMOUS
    assert session.user is None
    assert session.authentication_strategy is None


async def test_anonymous_session_is_cached_without_its_token(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()

    cached = kit.cache.peek(session.token)
    assert cached == session.without_token()
    assert cached is not None and cached.cache_expiry == kit.clock() + kit.settings.session_cache_ttl


async def test_second_lookup_is_served_from_the_cache(kit: Kit, queries: QueryLog) -> None:
    session = await kit.sessions.create_anonymous_session()
    kit.cache.calls.clear()
    queries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found == session
    assert kit.cache.ops() == ["get"]
    assert queries.count == 0


async def test_unknown_token_resolves_to_none(kit: Kit) -> None:
    await kit.sessions.create_anonymous_session()

    assert await kit.sessions.get_session_from_token(secrets.token_urlsafe(32)) is None


async def test_over_long_token_resolves_to_none_without_touching_db_or_cache(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    found = await kit.sessions.get_session_from_token("a" * (MAX_TOKEN_LENGTH + 1))

    assert found is None
    assert queries.count == 0
    assert kit.cache.calls == []


async def test_empty_token_resolves_to_none(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    assert await kit.sessions.get_session_from_token("") is None
    assert queries.count == 0


async def test_fresh_cached_copy_wins_over_a_changed_database_row(kit: Kit) -> None:
    # given a cached session whose row then changes behind the service's back
    session = await kit.sessions.create_anonymous_session()
    channel = await kit.default_channel()
    await Session.filter(id=session.id).update(active_channel_id=channel.id)

    # when it is looked up while the cached copy is fresh
    kit.clock.advance(kit.settings.session_cache_ttl - 1)
    found = await kit.sessions.get_session_from_token(session.token)

    # then the cached copy answers
    assert found is not None
    assert found.active_channel_id is None


async def test_stale_cached_copy_is_reread_from_the_database_and_recached(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    channel = await kit.default_channel()
    await Session.filter(id=session.id).update(active_channel_id=channel.id)
    kit.clock.advance(kit.settings.session_cache_ttl + 1)
    kit.cache.calls.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found is not None
    assert found.active_channel_id == channel.id
    assert kit.cache.calls == [("get", token_digest(session.token)), ("set", token_digest(session.token))]
    assert kit.cache.peek(session.token) == found.without_token()
    assert found.cache_expiry == kit.clock() + kit.settings.session_cache_ttl


async def test_lookup_after_a_cache_miss_caches_the_session(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    kit.cache.entries.clear()

    found = await kit.sessions.get_session_from_token(session.token)

    assert found == session
    assert kit.cache.peek(session.token) == session.without_token()


async def test_invalidated_session_resolves_to_none(kit: Kit) -> None:
    session = await kit.sessions.create_anonymous_session()
    await Session.filter(id=session.id).update(invalidated=True)
    kit.cache.entries.clear()

    assert await kit.sessions.get_session_from_token(session.token) is None


async def test_expired_session_resolves_to_none_even_when_cached(make_kit: KitFactory) -> None:
    kit = make_kit(session_duration=100, session_cache_ttl=1000)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(100)

    assert await kit.sessions.get_session_from_token(session.token) is None


async def test_lookups_keep_working_when_every_cache_call_fails(kit: Kit) -> None:
    # given a cache whose every call raises
    async def broken(*_: object) -> None:
        raise ConnectionError("cache down")

    kit.cache.set = broken  # type: ignore[method-assign, assignment]
    kit.cache.get = broken  # type: ignore[method-assign, assignment]

    # when a session is created and looked up
    session = await kit.sessions.create_anonymous_session()
    found = await kit.sessions.get_session_from_token(session.token)

    # then the database answers
    assert found == session
