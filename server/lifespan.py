"""The lifespan owns every resource: database, cache and services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypedDict

from starlette.applications import Starlette

from server.bootstrap import bootstrap
from server.cache import build_invalidation_channel, build_login_limiter, build_session_cache, listening
from server.clients import Clients
from server.database import close_database, open_database
from server.housekeeping import scheduled_session_clean
from server.memory import release_free_memory
from server.services import Services
from server.services.cache_outages import CacheOutageBoard, watching
from server.settings import Settings


class State(TypedDict):
    services: Services
    settings: Settings


def make_lifespan(settings: Settings) -> Callable[[Starlette], AbstractAsyncContextManager[State]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        await open_database(settings.database_url)
        clients = Clients.from_settings(settings)
        namespace = settings.session_cache_namespace
        channel = build_invalidation_channel(
            settings, namespace, redis=clients.redis, subscriber=clients.redis_subscriber
        )
        # A cache shared with other instances (or kept coherent with theirs): each must learn when another
        # one cannot reach it, or could not tell the others what to drop.
        outages = CacheOutageBoard() if clients.redis is not None or channel is not None else None
        cache = build_session_cache(settings, namespace, redis=clients.redis, outages=outages, channel=channel)
        try:
            repaired = await bootstrap(settings)
            services = Services.build(cache, settings, build_login_limiter(settings, clients.redis, namespace))
            if repaired:  # sessions cached before the repair carry the permissions it put back
                await services.sessions.clear_cache()
            release_free_memory()  # what the migrations and the bootstrap's password hashing left behind
            async with (
                listening(cache.strategy),
                watching(outages, cache.cleared),
                scheduled_session_clean(services.sessions, settings),
            ):
                yield {"services": services, "settings": settings}
        finally:
            await cache.close()
            await clients.close()
            await close_database()

    return lifespan
