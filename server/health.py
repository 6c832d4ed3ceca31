from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.database import database_is_reachable


async def health(request: Request) -> JSONResponse:
    """200 while the database answers, 503 otherwise."""
    if await database_is_reachable():
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
