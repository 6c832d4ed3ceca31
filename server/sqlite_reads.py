"""Point reads of the SQLite file on the event loop's own thread.

Tortoise reaches SQLite through aiosqlite, which runs every statement on a thread of its own: the
statement goes through a queue, and its result comes back to the loop by `call_soon_threadsafe`,
waking the loop through its self-pipe. For an indexed lookup of one row that round trip costs more
CPU than the read itself. So the session lookup reads through a second connection, read-only and
called on the loop's thread.

In WAL mode (Tortoise's default for SQLite) a reader neither waits for the writer nor blocks it,
and each statement sees every transaction committed before it began: what the writer connection
committed before the lookup started is seen, as through that connection. The reader never waits:
`busy_timeout` is 0, and a read that finds the file busy (a checkpoint resetting the WAL, a
recovery) answers None, so the caller reads the ordinary way. Reads inside a transaction must see
its own uncommitted writes and always go through the transaction's connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

_reader: LoopThreadReader | None = None


class LoopThreadReader:
    """A read-only connection to the file `client` (Tortoise's connection) writes."""

    def __init__(self, path: str, client: object = None) -> None:
        self.client = client
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        # Used only from the event loop's thread, but opened wherever the lifespan runs.
        self._connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout = 0")

    def rows(self, statement: str, parameters: Sequence[Any]) -> list[Any] | None:
        """The rows of `statement`, or None when the file is busy (read it another way)."""
        try:
            return self._connection.execute(statement, parameters).fetchall()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise

    def close(self) -> None:
        self._connection.close()


def open_reader(path: str, client: object) -> None:
    """Read `path`, the file Tortoise's `client` writes, on the loop's thread from now on (once that
    connection made it a WAL file)."""
    global _reader
    close_reader()
    _reader = LoopThreadReader(path, client)


def close_reader() -> None:
    global _reader
    if _reader is not None:
        _reader.close()
        _reader = None


def loop_thread_reader(client: object) -> LoopThreadReader | None:
    """The reader of the file `client` writes, if one is open (never another file's)."""
    return _reader if _reader is not None and _reader.client is client else None
