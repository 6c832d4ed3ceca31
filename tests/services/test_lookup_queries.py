"""The uncached lookup and createAnonymousSession at the database: one statement each, read and written
straight through the driver (server/services/stored_session.py), on SQLite and PostgreSQL alike; and
the cache write after a miss, bounded by SESSION_CACHE_TIMEOUT_MS when Redis stalls.

Statements are counted from Tortoise's statement log (tests/services/support.py, QueryLog).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from models import Permission, Session, SessionType, User
from server.cache import build_session_cache
from server.database import database_connection
from server.services import SessionService
from server.services.client_info import ClientInfo
from server.services.request_context import RequestContext
from server.services.stored_session import load_stored_session
from server.settings import Settings
from tests.conftest import Backend
from tests.services.support import Kit, KitFactory, QueryLog, RedisEntries, login_with_two_roles, make_user

P = Permission
PHONE = ClientInfo("203.0.113.77", "Phone/1.0")


class OrmObjects:
    """Counts the model instances and querysets Tortoise builds (a hook on their constructors)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for owner, name in ((Model, "__init__"), (QuerySet, "__init__")):
            monkeypatch.setattr(owner, name, self._counting(getattr(owner, name)))
        original = Model._init_from_db.__func__  # type: ignore[attr-defined]

        def from_db(cls: type[Model], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(Model, "_init_from_db", classmethod(from_db))

    def _counting(self, function: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return function(*args, **kwargs)

        return counted


@pytest.fixture
def orm_objects(monkeypatch: pytest.MonkeyPatch) -> OrmObjects:
    return OrmObjects(monkeypatch)


# The lookup.


async def test_a_cache_miss_is_one_select_by_the_token_digest(kit: Kit, queries: QueryLog) -> None:
    session = await login_with_two_roles(kit)
    kit.cache.entries.clear()
    queries.clear()

    assert await kit.sessions.get_session_from_token(session.token) == session

    assert queries.count == 1
    assert re.match(r"\s*SELECT\b", queries.statements[0], re.IGNORECASE)
    assert re.search(r"WHERE s\.token_hash = (\?|\$1)\s*$", queries.statements[0])


async def test_the_lookup_finds_the_session_through_the_token_index(
    kit: Kit, backend: Backend, queries: QueryLog
) -> None:
    # given the statement a lookup runs
    session = await kit.sessions.create_anonymous_session()
    queries.clear()
    await load_stored_session(session.cache_key)
    (statement,) = queries.statements

    # then its plan reaches the session by the unique index on token_hash, never by scanning the table
    async with in_transaction() as connection:
        if backend.is_postgres:
            await connection.execute_script("SET LOCAL enable_seqscan = off")  # tiny tables: force the choice
            rows = (await connection.execute_query(f"EXPLAIN {statement}", [session.cache_key]))[1]
            plan = "\n".join(str(row[0]) for row in rows)
            assert re.search(r"Index (Only )?Scan using \w+ on sessions s\b", plan), plan
        else:
            rows = (await connection.execute_query(f"EXPLAIN QUERY PLAN {statement}", [session.cache_key]))[1]
            plan = "\n".join(str(row[3]) for row in rows)
            assert re.search(r"SEARCH s USING INDEX \w+ \(token_hash=\?\)", plan), plan
    assert "SCAN s" not in plan and "Seq Scan on sessions" not in plan, plan


async def test_a_cache_miss_builds_no_orm_object(kit: Kit, orm_objects: OrmObjects) -> None:
    # given a session that nothing is due on (no slide, no activity write), not cached
    session = await login_with_two_roles(kit)
    kit.cache.entries.clear()
    counted = orm_objects.count

    # when it is looked up
    assert await kit.sessions.get_session_from_token(session.token) == session

    # then no queryset and no model instance was built; the hook itself does count an ORM read
    assert orm_objects.count == counted
    await Session.filter(id=session.id).first()
    assert orm_objects.count >= counted + 2


async def test_the_lookup_reads_each_column_as_the_orm_does(kit: Kit) -> None:
    session = await login_with_two_roles(kit)

    stored = await load_stored_session(session.cache_key)

    row = await Session.get(token_hash=session.cache_key).prefetch_related("user")
    assert stored is not None and stored.user is not None and row.user is not None
    for field in fields(stored):
        if field.name == "user":
            continue
        assert getattr(stored, field.name) == getattr(row, field.name), field.name
    assert (stored.user.id, stored.user.identifier, stored.user.verified) == (
        row.user.id,
        row.user.identifier,
        row.user.verified,
    )
    assert [(c.code, set(c.permissions)) for c in stored.user.channel_permissions] == [
        ("__default_channel__", {P.ReadOrder}),
        ("eu", {P.ReadOrder, P.UpdateOrder, P.ReadUser}),
        ("us", {P.UpdateOrder, P.ReadUser}),
    ]
    moments = [stored.created_at, stored.expires, stored.last_active_at, stored.seen_at]
    assert all(m is not None and m.utcoffset() == timedelta(0) for m in moments)


async def test_a_missing_token_is_one_select_returning_nothing(kit: Kit, queries: QueryLog) -> None:
    queries.clear()

    assert await load_stored_session("0" * 64) is None
    assert queries.count == 1


# createAnonymousSession.


async def test_create_anonymous_session_is_one_insert_and_one_cache_write(
    kit: Kit, queries: QueryLog, orm_objects: OrmObjects
) -> None:
    channel = await kit.default_channel()
    queries.clear()
    kit.cache.calls.clear()
    counted = orm_objects.count

    await kit.sessions.create_anonymous_session(channel.id, PHONE)

    assert len(queries.statements) == 1
    assert re.match(r"\s*INSERT INTO sessions\b", queries.statements[0], re.IGNORECASE)
    assert kit.cache.ops() == ["set"]
    assert orm_objects.count == counted


async def test_create_anonymous_session_stores_the_row_as_before(kit: Kit) -> None:
    # given a request from a phone
    channel = await kit.default_channel()
    now = kit.clock.at()

    # when it creates a guest session
    session = await kit.sessions.create_anonymous_session(channel.id, PHONE)

    # then the row holds every column a guest session starts with
    row = await Session.get(token_hash=session.cache_key)
    assert (row.id, row.type, row.invalidated, row.remember_me) == (session.id, SessionType.ANONYMOUS, False, True)
    assert (row.created_at, row.updated_at, row.last_active_at, row.seen_at) == (now, now, now, now)
    assert row.expires == now + timedelta(seconds=kit.settings.session_duration) == session.expires
    assert (row.client_address, row.user_agent) == ("203.0.113.0", "Phone/1.0")
    assert (row.active_channel_id, row.active_order_id, row.user_id) == (channel.id, None, None)  # type: ignore[attr-defined]
    assert (row.authentication_strategy, row.authenticated_at, row.impersonator_id) == (None, None, None)  # type: ignore[attr-defined]
    # and what it answered is what a read of that row answers
    kit.cache.entries.clear()
    assert await kit.sessions.get_session_from_token(session.token) == session


async def test_a_login_stores_its_session_row_in_one_insert_with_every_column(kit: Kit, queries: QueryLog) -> None:
    # given alice, with a cart from her guest session, logging in from a phone with a proved password
    alice = await make_user("alice")
    channel = await kit.default_channel()
    now = kit.clock.at()
    ctx = RequestContext(channel_id=channel.id, session=None, client_address="203.0.113.9", user_agent="Phone/1.0")
    queries.clear()

    session = await kit.sessions.create_new_authenticated_session(ctx, alice, "native", remember_me=False, proved=True)

    assert (
        sum(1 for statement in queries.statements if statement.lstrip().upper().startswith("INSERT INTO SESSIONS")) == 1
    )
    row = await Session.get(token_hash=session.cache_key)
    assert (row.id, row.type, row.invalidated, row.remember_me) == (session.id, SessionType.AUTHENTICATED, False, False)
    assert (row.user_id, row.authentication_strategy, row.authenticated_at) == (alice.id, "native", now)  # type: ignore[attr-defined]
    assert (row.created_at, row.updated_at, row.last_active_at, row.seen_at) == (now, now, now, now)
    assert row.expires == session.expires
    assert (row.client_address, row.user_agent) == ("203.0.113.0", "Phone/1.0")
    assert (row.active_channel_id, row.active_order_id, row.impersonator_id) == (channel.id, None, None)  # type: ignore[attr-defined]
    assert (await User.get(id=alice.id)).last_login == now
    kit.cache.entries.clear()
    assert await kit.sessions.get_session_from_token(session.token) == session


async def test_sessions_ids_follow_one_another(kit: Kit) -> None:
    first = await kit.sessions.create_anonymous_session()
    second = await kit.sessions.create_anonymous_session()

    assert second.id == first.id + 1
    assert [row.id for row in await Session.all().order_by("id")][-2:] == [first.id, second.id]


async def test_timestamps_are_stored_as_the_orm_stores_them(make_kit: KitFactory, backend: Backend) -> None:
    # given a guest session (raw INSERT) and a login (ORM), both expired
    kit = make_kit(session_duration=100)
    guest = await kit.sessions.create_anonymous_session()
    member = await kit.login(await make_user("alice"))
    if not backend.is_postgres:  # SQLite compares timestamps as text: the two must be written alike
        rows = (await database_connection().execute_query("SELECT id, expires, created_at FROM sessions"))[1]
        texts = {row[0]: (row[1], row[2]) for row in rows}
        shape = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00")
        assert all(shape.fullmatch(text) for pair in texts.values() for text in pair), texts
        assert texts[guest.id] == texts[member.id]
    kit.clock.advance(100)

    # then the clean job finds both by their expiry
    assert await kit.sessions.clean_expired_sessions() == 2
    assert await Session.all().count() == 0


# The cache write after a miss, when Redis stalls.


class StallingProxy:
    """A TCP proxy in front of Redis that, while `stalling`, never forwards a fenced cache write (the
    EVALSHA of the refill's check-and-set script): its client waits for a reply that does not come."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.stalling = False
        self.withheld = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        for pump in (self._requests(client_reader, server_writer), self._pipe(server_reader, client_writer)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.stalling and b"\r\nEVALSHA\r\n" in chunk.upper():
                    self.withheld += 1
                    continue
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()


@pytest_asyncio.fixture
async def stalling_redis(backend: Backend) -> AsyncIterator[tuple[StallingProxy, str]]:
    host_port = re.match(r"redis://([^:/]+):(\d+)", backend.session_cache)
    assert host_port is not None
    proxy = StallingProxy(host_port[1], int(host_port[2]))
    url = await proxy.start()
    try:
        yield proxy, url
    finally:
        await proxy.close()


@pytest.fixture
def entries(backend: Backend) -> Iterator[RedisEntries]:
    view = RedisEntries(backend.namespace, backend.session_cache)
    yield view
    view.close()


@pytest.mark.backends("postgres")
async def test_a_stalled_cache_write_after_a_miss_delays_the_answer_by_the_cache_timeout_at_most(
    db: object, backend: Backend, stalling_redis: tuple[StallingProxy, str], entries: RedisEntries
) -> None:
    # given a session that is stored but not cached, and Redis reached through a proxy (50 ms timeout)
    proxy, url = stalling_redis
    settings = Settings(session_cache=url, session_cache_timeout_ms=50)
    cache = build_session_cache(settings, backend.namespace)
    try:
        sessions = SessionService(cache, settings)
        session = await sessions.create_anonymous_session()
        entries.pop(session.cache_key)

        # when it is looked up while Redis answers lookups but never the write that follows the miss
        proxy.stalling = True
        started = time.monotonic()
        found = await sessions.get_session_from_token(session.token)
        elapsed = time.monotonic() - started

        # then the session is answered from the database, late by the cache timeout at most
        assert found is not None and (found.id, found.expires) == (session.id, session.expires)
        assert proxy.withheld == 1
        assert elapsed < settings.session_cache_timeout + 0.25, elapsed
    finally:
        await cache.close()
