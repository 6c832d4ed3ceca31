"""One SQLite file with SESSION_CACHE=memory is one server process's.

Processes sharing a SQLite file have no channel to tell each other of a deleted session: one with an
in-process cache would keep serving a session another had revoked (for up to SESSION_CACHE_TTL). So a
server with that configuration holds an exclusive, non-blocking `flock` on `<db>.instance.lock` for its
lifetime (the parent's, when there are workers), and a second one is refused at start. The kernel
releases the lock when its holder exits, however it exits, so a crash never leaves a stale lock.

Other configurations need no lock: PostgreSQL and Redis carry invalidations between instances
(server/cache/invalidation.py), SESSION_CACHE=noop caches nothing, and a `:memory:` database is the
process's own. The operators' commands (set-password, sessions revoke, clean-sessions) are not
servers and do not take it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server.settings import Settings

LOCK_SUFFIX = ".instance.lock"
FIX = "use SESSION_CACHE=redis://… or a PostgreSQL DATABASE_URL to run several"


class InstanceLockError(Exception):
    """Another server process already serves this SQLite file with an in-process cache."""


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of DATABASE_URL, or None (PostgreSQL, or an in-memory database)."""
    url = settings.database_url
    if not url.startswith("sqlite://"):
        return None
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def needs_instance_lock(settings: Settings) -> bool:
    return settings.session_cache == "memory" and sqlite_file(settings) is not None


def refused_workers(settings: Settings) -> str | None:
    """Why WEB_CONCURRENCY cannot be used with these settings (one line), or None."""
    if settings.web_concurrency > 1 and needs_instance_lock(settings):
        return (
            f"WEB_CONCURRENCY={settings.web_concurrency} is refused with SESSION_CACHE=memory on SQLite: the"
            f" workers could not learn of each other's deleted sessions; {FIX}, or WEB_CONCURRENCY=1"
        )
    return None


@contextmanager
def instance_lock(settings: Settings) -> Iterator[None]:
    """Hold the SQLite file's instance lock while the block runs (nothing to hold when not needed);
    InstanceLockError at once when another process holds it."""
    database = sqlite_file(settings)
    if database is None or not needs_instance_lock(settings):
        yield
        return
    lock_path = database.with_name(database.name + LOCK_SUFFIX)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLockError(
                f"another server process is serving {database} with SESSION_CACHE=memory, and neither could"
                f" learn of the other's deleted sessions; {FIX}"
            ) from None
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock
