"""Scheduled clean-up of expired and idle sessions, run by every instance (cleaners never collide)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.metrics import record_clean_run
from server.services.session import SessionService
from server.settings import Settings

logger = logging.getLogger(__name__)


@asynccontextmanager
async def scheduled_session_clean(
    sessions: SessionService, settings: Settings
) -> AsyncIterator[asyncio.Task[None] | None]:
    """While the block runs, drain the backlog every SESSION_CLEAN_INTERVAL in a background task.

    Nothing is started when the interval is None. The task is cancelled, and awaited, on the way out.
    """
    interval = settings.session_clean_interval
    if interval is None:
        yield None
        return
    task = asyncio.create_task(
        _clean_every(sessions, interval, settings.session_clean_batch_size), name="session-clean"
    )
    try:
        yield task
    finally:
        task.cancel()
        # Not `suppress(CancelledError)`: that would also swallow a cancellation of this (outer) task.
        await asyncio.gather(task, return_exceptions=True)


async def _clean_every(sessions: SessionService, interval: float, batch_size: int) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await sessions.drain_expired_sessions(batch_size)
        except Exception as error:  # one line, no traceback: the next run tries again
            record_clean_run("failed")
            logger.warning("scheduled session clean-up failed, retrying in %gs: %s", interval, _one_line(error))
            continue
        record_clean_run("ok")
        if removed:
            logger.info("scheduled session clean-up removed %d expired or idle sessions", removed)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
