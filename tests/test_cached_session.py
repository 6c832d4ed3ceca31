"""CachedSession's JSON form, derived from its fields: the exact shape caches hold, and a round trip
of every field (dates, enums, nested users and None included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from models.enums import Permission
from server.cached_session import CachedSession, CachedSessionUser, UserChannelPermissions

FULL = CachedSession(
    cache_expiry=1_796_130_720.25,
    id=7,
    token="raw-token",
    expires=datetime(2031, 5, 17, 8, 30, 15, 123456, tzinfo=UTC),
    active_order_id=42,
    authentication_strategy="native",
    user=CachedSessionUser(
        id=3,
        identifier="alice@example.com",
        verified=False,
        channel_permissions=(
            UserChannelPermissions(id=1, token="t1", code="c1", permissions=(Permission.Owner, Permission.ReadOrder)),
            UserChannelPermissions(id=2, token="t2", code="c2", permissions=()),
        ),
    ),
    active_channel_id=5,
    authenticated_at=datetime(2031, 5, 16, 8, 0, tzinfo=UTC),
    impersonator_id=9,
    activity_due=1_796_130_600.5,
)
BARE = CachedSession(
    cache_expiry=1.5, id=1, token="", expires=datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))
)


def test_the_json_form_is_the_shape_every_cache_holds() -> None:
    assert FULL.to_json() == {
        "cacheExpiry": 1_796_130_720.25,
        "id": 7,
        "expires": "2031-05-17T08:30:15.123456+00:00",
        "activeOrderId": 42,
        "authenticationStrategy": "native",
        "activeChannelId": 5,
        "authenticatedAt": "2031-05-16T08:00:00+00:00",
        "impersonatorId": 9,
        "activityDue": 1_796_130_600.5,
        "user": {
            "id": 3,
            "identifier": "alice@example.com",
            "verified": False,
            "channelPermissions": [
                {"id": 1, "token": "t1", "code": "c1", "permissions": ["Owner", "ReadOrder"]},
                {"id": 2, "token": "t2", "code": "c2", "permissions": []},
            ],
        },
    }


def test_every_field_round_trips_and_the_token_never_leaves() -> None:
    for session in (FULL, BARE):
        encoded = session.to_json()
        assert "token" not in encoded
        decoded = CachedSession.from_json(encoded, token=session.token)
        assert decoded == session
        assert decoded.expires.utcoffset() == session.expires.utcoffset()
    assert "raw-token" not in str(FULL.to_json())
    assert CachedSession.from_json(FULL.to_json()).token == ""
    assert (BARE.to_json()["user"], BARE.to_json()["activeOrderId"]) == (None, None)


def test_a_copy_cached_before_a_field_was_added_takes_its_default() -> None:
    # a copy written by the previous release (a rolling deploy): no authenticatedAt, impersonatorId, activityDue
    encoded = FULL.to_json()
    del encoded["authenticatedAt"], encoded["impersonatorId"], encoded["activityDue"]

    decoded = CachedSession.from_json(encoded, token=FULL.token)

    assert decoded.authenticated_at is None and decoded.impersonator_id is None and decoded.activity_due == 0.0
    assert decoded.id == FULL.id and decoded.user == FULL.user
