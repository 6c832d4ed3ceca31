"""`/health` (liveness) and `/ready` (readiness: the database, Redis and the invalidation channel)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.clients import redis_client
from server.database import database_is_reachable
from server.services import Services
from server.settings import Settings

#: seconds a readiness check waits for Redis
READY_TIMEOUT = 1.0


async def health(request: Request) -> JSONResponse:
    """200 while the database answers, 503 otherwise."""
    if await database_is_reachable():
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


async def ready(request: Request) -> JSONResponse:
    """200 when every dependency is usable, else 503; the body names each one's state.

    `database`: a trivial query works. `redis` (with SESSION_CACHE=redis://…): a PING on a connection of
    its own answers within READY_TIMEOUT. `invalidation_channel` (when instances share invalidations):
    "ok" while the listener is subscribed, "down" while this instance does not trust its first cache
    tier (it then answers from the next tier or the database: correct, but slower).
    """
    settings: Settings = request.state.settings
    checks = {"database": "ok" if await database_is_reachable() else "unreachable"}
    if settings.uses_redis:
        checks["redis"] = "ok" if await _redis_answers(settings.session_cache) else "unreachable"
    channel = _channel_state(request.state.services)
    if channel is not None:
        checks["invalidation_channel"] = channel
    usable = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if usable else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if usable else 503)


async def _redis_answers(url: str) -> bool:
    client = redis_client(url, READY_TIMEOUT)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


def _channel_state(services: Services) -> str | None:
    """ "ok" or "down" when the session cache is kept coherent by an invalidation channel, else None."""
    from server.cache.coherent import CoherentSessionCache

    cache = getattr(services.sessions, "_cache", None)
    strategy = getattr(cache, "strategy", None)
    if not isinstance(strategy, CoherentSessionCache):
        return None
    return "ok" if strategy.trusted else "down"
