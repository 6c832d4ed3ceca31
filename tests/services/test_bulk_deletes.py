"""Deleting sessions in bulk: every session of a user, and clean batches, past the argument limit.

asyncpg accepts at most 32,767 arguments in one statement (a standard SQLite build, 32,766), so a
delete that lists the digests it read (`token_hash IN (...)`, `id IN (...)`) breaks past that many
sessions. These tests delete MANY sessions at once and check that each one is gone from the
database and that its digest went to the cache as a delete, exactly once.
"""

from __future__ import annotations

import secrets

import pytest

from models import Session, SessionType, User
from server.database import check_sqlite_version
from server.services import UserService
from server.services.passwords import verify_password
from tests.conftest import Backend
from tests.services.support import Kit, QueryLog, make_order, make_user
from tests.test_cli import run_server

MANY = 40_000
DAY = 86_400.0
INSERT_BATCH = 5_000


async def _insert_sessions(
    kit: Kit, count: int, *, user: User | None = None, expires_in: float = DAY, idle_for: float = 0.0
) -> list[str]:
    """`count` sessions stored with one bulk insert per INSERT_BATCH (none cached); their token digests."""
    digests = [secrets.token_hex(32) for _ in range(count)]
    now = kit.clock.at()
    await Session.bulk_create(
        [
            Session(
                token_hash=digest,
                type=SessionType.ANONYMOUS if user is None else SessionType.AUTHENTICATED,
                created_at=now,
                expires=kit.clock.at(expires_in),
                last_active_at=kit.clock.at(-idle_for),
                user_id=None if user is None else user.id,
                authentication_strategy=None if user is None else "native",
            )
            for digest in digests
        ],
        batch_size=INSERT_BATCH,
    )
    return digests


def _deleted_from_cache(kit: Kit) -> list[str]:
    return sorted(key for op, key in kit.cache.calls if op == "delete")


async def _stored_digests() -> set[str]:
    return {str(digest) for digest in await Session.all().values_list("token_hash", flat=True)}


async def test_deleting_sessions_by_user_removes_and_forgets_every_one(kit: Kit) -> None:
    # given a user with MANY sessions and another user with one
    alice, bob = await make_user("alice"), await make_user("bob")
    digests = await _insert_sessions(kit, MANY, user=alice)
    kept = await _insert_sessions(kit, 1, user=bob)

    # when alice's sessions are deleted
    deleted = await kit.sessions.delete_sessions_by_user(alice.id)

    # then all of them are gone from the database and the cache, bob's is kept
    assert deleted == MANY
    assert await _stored_digests() == set(kept)
    assert _deleted_from_cache(kit) == sorted(digests)


async def test_deleting_sessions_by_user_is_one_delete_returning_the_digests(
    kit: Kit, backend: Backend, queries: QueryLog
) -> None:
    # given a user with two sessions
    alice = await make_user("alice")
    digests = await _insert_sessions(kit, 2, user=alice)
    queries.clear()

    # when they are deleted
    assert await kit.sessions.delete_sessions_by_user(alice.id) == 2

    # then one statement deleted them by the condition and returned their digests (and what their
    # events record): nothing is read first, so no session created in between is missed or left out of
    # the digests; one more statement recorded their ends
    placeholder = "$1" if backend.is_postgres else "?"
    returning = 'RETURNING "id","token_hash","user_id","client_address"'
    assert queries.statements[0] == f'DELETE FROM "sessions" WHERE "user_id"={placeholder} {returning}'
    assert [statement.split(" (")[0] for statement in queries.statements[1:]] == ['INSERT INTO "session_events"']
    assert _deleted_from_cache(kit) == sorted(digests)


async def test_a_password_reset_ends_every_session_of_the_user(kit: Kit) -> None:
    users = UserService(kit.sessions)
    alice = await users.create("alice", "old password")
    digests = await _insert_sessions(kit, MANY, user=alice)

    await users.update(alice.id, password="new password")

    stored = await User.get(id=alice.id)
    assert await verify_password(stored.password_hash, "new password") is True
    assert await verify_password(stored.password_hash, "old password") is False
    assert await Session.all().count() == 0
    assert _deleted_from_cache(kit) == sorted(digests)


async def test_changing_ones_own_password_ends_every_other_session(kit: Kit) -> None:
    users = UserService(kit.sessions)
    alice = await users.create("alice", "old password")
    current = await kit.login(alice)
    digests = await _insert_sessions(kit, MANY, user=alice)

    assert await users.change_password(current, "old password", "new password") is True

    assert [session.id for session in await Session.all()] == [current.id]
    assert _deleted_from_cache(kit) == sorted(digests)


async def test_deleting_a_user_deletes_and_forgets_every_session(kit: Kit) -> None:
    alice = await make_user("alice")
    digests = await _insert_sessions(kit, MANY, user=alice)

    await UserService(kit.sessions).delete(alice.id)

    assert await User.filter(id=alice.id).exists() is False
    assert await Session.all().count() == 0
    assert _deleted_from_cache(kit) == sorted(digests)


async def test_deleting_sessions_by_active_order_removes_and_forgets_every_one(kit: Kit) -> None:
    order = await make_order("CART1")
    digests = await _insert_sessions(kit, 3)
    await Session.filter(token_hash__in=digests[:2]).update(active_order_id=order.id)

    assert await kit.sessions.delete_sessions_by_active_order_id(order.id) == 2

    assert await _stored_digests() == {digests[2]}
    assert _deleted_from_cache(kit) == sorted(digests[:2])


async def test_a_clean_batch_of_many_expired_sessions_removes_them_all(kit: Kit) -> None:
    # given MANY expired sessions and a live one
    expired = await _insert_sessions(kit, MANY, expires_in=-1)
    live = await _insert_sessions(kit, 1)

    # when a batch of MANY is cleaned
    removed = await kit.sessions.clean_expired_sessions(batch_size=MANY)

    # then the expired ones are gone from the database and the cache; the next batch finds nothing
    assert removed == MANY
    assert await _stored_digests() == set(live)
    assert _deleted_from_cache(kit) == sorted(expired)
    assert await kit.sessions.clean_expired_sessions(batch_size=MANY) == 0


async def test_a_clean_batch_of_many_is_filled_with_idle_sessions_after_expired_ones(kit: Kit) -> None:
    # given MANY / 2 expired sessions, MANY / 2 + 1 idle guest sessions and a recently used one
    expired = await _insert_sessions(kit, MANY // 2, expires_in=-1)
    idle = await _insert_sessions(kit, MANY // 2, idle_for=8 * DAY)
    longest_idle = await _insert_sessions(kit, 1, idle_for=9 * DAY)
    recent = await _insert_sessions(kit, 1, idle_for=DAY)

    # when a batch of MANY is cleaned
    removed = await kit.sessions.clean_expired_sessions(batch_size=MANY)

    # then it holds every expired session, then the longest idle ones: one idle session and the recent one stay
    assert removed == MANY
    remaining = await _stored_digests()
    assert remaining - set(idle) == set(recent)
    assert len(remaining & set(idle)) == 1
    assert _deleted_from_cache(kit) == sorted(set(expired + idle + longest_idle) - remaining)


async def test_draining_in_batches_of_many_removes_the_whole_backlog(kit: Kit) -> None:
    expired = await _insert_sessions(kit, MANY, expires_in=-1)
    idle = await _insert_sessions(kit, 5, idle_for=8 * DAY)

    assert await kit.sessions.drain_expired_sessions(batch_size=MANY) == MANY + 5

    assert await Session.all().count() == 0
    assert _deleted_from_cache(kit) == sorted(expired + idle)


@pytest.mark.backends("postgres")
async def test_clean_sessions_command_with_a_batch_of_many(kit: Kit, backend: Backend) -> None:
    # given MANY expired sessions and a live one in the test's PostgreSQL database
    assert backend.database_url is not None
    await _insert_sessions(kit, MANY, expires_in=-(kit.clock.now + DAY))  # expired by the real clock too
    live = await _insert_sessions(kit, 1)

    # when the operator cleans with a batch of MANY
    result = run_server(
        "clean-sessions",
        "--batch-size",
        str(MANY),
        database_url=backend.database_url,
        SESSION_CACHE=backend.session_cache,
        SESSION_CACHE_NAMESPACE=backend.namespace,
    )

    # then the backlog is removed in one batch
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"removed {MANY} sessions"
    assert await _stored_digests() == set(live)


def test_a_sqlite_without_delete_returning_is_refused_at_startup() -> None:
    check_sqlite_version((3, 35, 0))
    with pytest.raises(RuntimeError) as refused:
        check_sqlite_version((3, 34, 1))
    assert str(refused.value) == "SQLite 3.34.1 is too old: 3.35.0 or later is needed (DELETE ... RETURNING)"
