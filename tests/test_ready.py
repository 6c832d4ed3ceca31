"""/ready (server/health.py): the database, and Redis and the invalidation channel when configured."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.faults import PrivateRedis
from tests.live_server import live_server

WAIT_SECONDS = 15.0


def _ready(port: int) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _wait_for(port: int, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        code, body = _ready(port)
        if code == status:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_ready_reports_the_database(tmp_path: Path) -> None:
    with live_server(tmp_path) as port:
        assert _ready(port) == (200, {"status": "ok", "database": "ok"})


def test_ready_reports_redis_and_the_channel_and_answers_503_while_redis_is_down(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with live_server(tmp_path, SESSION_CACHE=redis.url) as port:
            assert _wait_for(port, 200) == {
                "status": "ok",
                "database": "ok",
                "redis": "ok",
                "invalidation_channel": "ok",
            }

            redis.stop()
            down = _wait_for(port, 503)
            assert down["status"] == "unavailable" and down["database"] == "ok" and down["redis"] == "unreachable"
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200  # still alive

            redis.start()
            assert _wait_for(port, 200)["invalidation_channel"] == "ok"
    finally:
        redis.stop()
