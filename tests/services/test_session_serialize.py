"""SessionService: serialize_session, serialize_stored_session and the channel permissions they carry."""

from __future__ import annotations

from datetime import timedelta

from models import Permission, Session, SessionType
from server.cached_session import CachedSessionUser, UserChannelPermissions
from server.services.stored_session import StoredSession
from tests.services.support import Kit, KitFactory, make_role, make_user

P = Permission


async def test_channel_permissions_are_the_union_of_role_permissions_per_channel(kit: Kit) -> None:
    # given three channels and two roles overlapping on the second one
    default = await kit.default_channel()
    eu = await kit.channels.create("eu", token="eu-token")
    us = await kit.channels.create("us", token="us-token")
    buyer = await make_role("buyer", [P.ReadOrder, P.Authenticated], us, default)
    manager = await make_role("manager", [P.UpdateOrder, P.ReadOrder], eu, us)
    user = await make_user("alice", manager, buyer)

    # when the user logs in
    session = await kit.login(user)

    # then each channel carries the union, in permission order, channels sorted by id
    assert session.user == CachedSessionUser(
        id=user.id,
        identifier="alice",
        verified=True,
        channel_permissions=(
            UserChannelPermissions(default.id, default.token, default.code, (P.Authenticated, P.ReadOrder)),
            UserChannelPermissions(eu.id, "eu-token", "eu", (P.ReadOrder, P.UpdateOrder)),
            UserChannelPermissions(us.id, "us-token", "us", (P.Authenticated, P.ReadOrder, P.UpdateOrder)),
        ),
    )


async def test_user_without_roles_has_no_channel_permissions(kit: Kit) -> None:
    user = await make_user("bob")

    session = await kit.login(user)

    assert session.user is not None
    assert session.user.channel_permissions == ()
    assert session.authentication_strategy == "native"


async def test_serialize_session_copies_the_stored_session(make_kit: KitFactory) -> None:
    kit = make_kit(session_duration=1000, session_cache_ttl=100)
    stored = StoredSession(
        id=7,
        token_hash="h",
        type=SessionType.ANONYMOUS,
        expires=kit.clock.at(900),
        last_active_at=kit.clock.at(),
        invalidated=False,
        authentication_strategy=None,
        active_order_id=3,
        active_channel_id=2,
        user=None,
    )

    session = kit.sessions.serialize_session(stored, "tok")

    assert (session.id, session.token, session.expires) == (7, "tok", kit.clock.at(900))
    assert (session.active_order_id, session.active_channel_id, session.user) == (3, 2, None)
    assert session.cache_expiry == kit.clock() + 100


async def test_serialize_session_caps_cache_expiry_at_the_extension_due_time(make_kit: KitFactory) -> None:
    # given a 1000 s duration whose stored expiry is 520 s away: extension is due in 20 s
    kit = make_kit(session_duration=1000, session_cache_ttl=100)
    stored = StoredSession(
        id=1,
        token_hash="h",
        type=SessionType.ANONYMOUS,
        expires=kit.clock.at(520),
        last_active_at=kit.clock.at(),
        invalidated=False,
        authentication_strategy=None,
        active_order_id=None,
        active_channel_id=None,
        user=None,
    )

    assert kit.sessions.serialize_session(stored).cache_expiry == kit.clock() + 20


async def test_serialize_stored_session_reads_the_database_and_leaves_the_cache_untouched(kit: Kit) -> None:
    # given a cached session whose row changed behind the cache's back
    session = await kit.sessions.create_anonymous_session()
    channel = await kit.default_channel()
    await Session.filter(id=session.id).update(active_channel_id=channel.id)
    kit.cache.calls.clear()

    # when it is serialized from the database
    fresh = await kit.sessions.serialize_stored_session(session.token)

    # then the database state is returned and no cache call was made
    assert fresh is not None
    assert fresh.active_channel_id == channel.id
    assert fresh.token == session.token
    assert kit.cache.calls == []
    assert kit.cache.peek(session.token) == session.without_token()


async def test_serialize_stored_session_of_an_unknown_token_is_none(kit: Kit) -> None:
    assert await kit.sessions.serialize_stored_session("no-such-token") is None
    assert kit.cache.calls == []


async def test_serialize_stored_session_of_an_expired_session_is_none(make_kit: KitFactory) -> None:
    kit = make_kit(session_duration=100)
    session = await kit.sessions.create_anonymous_session()
    kit.clock.advance(100)

    assert await kit.sessions.serialize_stored_session(session.token) is None


async def test_authenticated_session_is_stored_with_user_and_strategy(kit: Kit) -> None:
    user = await make_user("carol")

    session = await kit.login(user)

    stored = await Session.get(id=session.id)
    assert stored.type == SessionType.AUTHENTICATED
    assert stored.user_id == user.id  # type: ignore[attr-defined]
    assert stored.authentication_strategy == "native"
    assert stored.expires == kit.clock.at() + timedelta(seconds=kit.settings.session_duration)
    assert kit.cache.peek(session.token) == session.without_token()
