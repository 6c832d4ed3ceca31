"""What every operator command shares: exit codes, failures in one line, and the services on the database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

from server.settings import Settings

if TYPE_CHECKING:
    from server.services import Services

EXIT_OK = 0
EXIT_FAILURE = 1
#: Bad usage (argparse's own code) or bad settings.
EXIT_BAD_USAGE = 2

#: A command: the parsed arguments and the settings in, the exit code out.
Command = Callable[[argparse.Namespace, Settings], int]
#: `add_subparsers()`'s result, to which each command module adds its commands.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandError(Exception):
    """An expected failure: printed as `error: <message>`, exit code 1."""


def one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@asynccontextmanager
async def services_on_the_database(settings: Settings, changes_sessions: bool = False) -> AsyncIterator[Services]:
    """The services on DATABASE_URL (migrated first) and on the session cache SESSION_CACHE names, built
    as a server builds them, so what a command deletes is dropped from the shared cache and announced
    to the running servers on the invalidation channel (see server/cache/coherent.py).

    With `changes_sessions`, and no way to reach the servers' in-process caches (SESSION_CACHE=memory
    without an invalidation channel), warns that each may keep a copy until its SESSION_CACHE_TTL passes.
    """
    from server.cache import build_invalidation_channel, build_login_limiter, build_session_cache, listening
    from server.clients import Clients
    from server.database import close_database, open_database
    from server.services import Services
    from server.services.cache_outages import CacheOutageBoard

    namespace = settings.session_cache_namespace
    clients = Clients.from_settings(settings)
    channel = build_invalidation_channel(settings, namespace, redis=clients.redis, subscriber=clients.redis_subscriber)
    if changes_sessions and settings.session_cache == "memory" and channel is None:
        warn(
            "SESSION_CACHE=memory: a running server cannot be reached from here and may keep a cached copy of"
            f" these sessions for up to {settings.session_cache_ttl:g} seconds (SESSION_CACHE_TTL)"
        )
    try:
        await open_database(settings.database_url)
    except BaseException:
        await clients.close()
        raise
    # A board without a reader: if the cache or the channel cannot be reached from here, the outage is
    # posted, so the servers stop trusting copies of what this command changes.
    outages = CacheOutageBoard() if clients.redis is not None or channel is not None else None
    cache = build_session_cache(settings, namespace, redis=clients.redis, outages=outages, channel=channel)
    try:
        # Listening, so what the command ends is acknowledged by the servers as soon as they applied it
        # rather than when their leases would have run out (server/cache/membership.py).
        async with listening(cache.strategy):
            yield Services.build(cache, settings, build_login_limiter(settings, clients.redis, namespace))
    finally:
        await cache.close()
        await clients.close()
        await close_database()
