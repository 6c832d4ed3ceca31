"""The session lookup on a SQLite file reads through a connection on the event loop's thread
(server/sqlite_reads.py): the same answer as through Tortoise's connection, what was committed is
seen at once, a transaction still sees its own writes, and a busy file never holds the loop."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tortoise.transactions import in_transaction

from models import Session
from server.bootstrap import bootstrap
from server.database import close_database, database_connection, open_database
from server.services import stored_session
from server.services.stored_session import load_stored_session
from server.settings import Settings
from server.sqlite_reads import LoopThreadReader, loop_thread_reader
from tests.services.support import Kit, login_with_two_roles

pytestmark = pytest.mark.backends("sqlite")  # the loop-thread reader is SQLite's


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    """A SQLite file opened as the server opens it (so with its loop-thread reader)."""
    path = tmp_path / "sessions.sqlite3"
    await open_database(f"sqlite://{path}")
    try:
        await bootstrap(Settings())
        yield path
    finally:
        await close_database()


class CountingReader:
    def __init__(self, reader: LoopThreadReader) -> None:
        self.reader = reader
        self.reads = 0

    def rows(self, statement: str, parameters: Any) -> list[Any] | None:
        self.reads += 1
        return self.reader.rows(statement, parameters)


@pytest.fixture
def reader(db: Path, monkeypatch: pytest.MonkeyPatch) -> CountingReader:
    opened = loop_thread_reader(database_connection())
    assert opened is not None
    counting = CountingReader(opened)
    monkeypatch.setattr(
        stored_session, "loop_thread_reader", lambda client: counting if opened.client is client else None
    )
    return counting


async def test_the_reader_answers_as_tortoises_connection_does(
    kit: Kit, reader: CountingReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await login_with_two_roles(kit)
    reader.reads = 0

    through_reader = await load_stored_session(session.cache_key)
    assert reader.reads == 1
    monkeypatch.setattr(stored_session, "loop_thread_reader", lambda client: None)
    through_tortoise = await load_stored_session(session.cache_key)

    assert through_reader is not None and through_reader.user is not None
    assert through_reader == through_tortoise


async def test_what_was_committed_is_read_at_once(kit: Kit, reader: CountingReader) -> None:
    session = await kit.sessions.create_anonymous_session()
    assert await load_stored_session(session.cache_key) is not None

    await Session.filter(token_hash=session.cache_key).update(invalidated=True)
    stored = await load_stored_session(session.cache_key)
    assert stored is not None and stored.invalidated
    await Session.filter(token_hash=session.cache_key).delete()

    assert await load_stored_session(session.cache_key) is None
    assert reader.reads == 3


async def test_a_transaction_reads_its_own_uncommitted_writes(kit: Kit, reader: CountingReader) -> None:
    session = await kit.sessions.create_anonymous_session()

    async with in_transaction():
        await Session.filter(token_hash=session.cache_key).update(invalidated=True)
        inside = await load_stored_session(session.cache_key)
        assert reader.reads == 0  # the reader would not see the update
        assert inside is not None and inside.invalidated
    assert reader.reads == 0


def test_a_busy_file_answers_none_at_once(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # a rollback-journal file locked by a writer: readers are refused
    reader = LoopThreadReader(str(path))
    try:
        started = time.monotonic()
        assert reader.rows("SELECT x FROM t", []) is None
        assert time.monotonic() - started < 0.05
        holder.rollback()
        assert reader.rows("SELECT x FROM t", []) == []
    finally:
        reader.close()
        holder.close()


async def test_a_lookup_the_reader_cannot_make_is_made_the_ordinary_way(
    kit: Kit, reader: CountingReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await kit.sessions.create_anonymous_session()
    monkeypatch.setattr(reader, "reader", BusyReader())

    stored = await load_stored_session(session.cache_key)

    assert stored is not None and stored.token_hash == session.cache_key
    assert reader.reads == 1


class BusyReader:
    def rows(self, statement: str, parameters: Any) -> None:
        return None
