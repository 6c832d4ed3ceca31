"""A database fault injected for real: the PostgreSQL of the test's own is stopped and started again
under a running `python -m server`.

During the outage /health answers 503 and operations that need the database fail with a coded
GraphQL error (INTERNAL_SERVER_ERROR, reason DATABASE_UNAVAILABLE) that reveals nothing of the
database; afterwards the same server process serves again, and its log holds no traceback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults import (
    ACTIVE_ORDER,
    ADD_ITEM,
    CREATE_ANONYMOUS_SESSION,
    SESSION_FROM_TOKEN,
    PrivatePostgres,
    ServerProcess,
    Timed,
    every_operation,
)

PASSWORD = "faults-not-the-default"
UNAVAILABLE = {"code": "INTERNAL_SERVER_ERROR", "reason": "DATABASE_UNAVAILABLE"}
RECOVERY_TIMEOUT = 20.0
#: What an error message must never show: a stack, SQL, the driver, or where the database lives.
LEAKS = ("traceback", 'file "', "select ", "insert ", "asyncpg", "tortoise", "errno", "127.0.0.1", "postgres")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster (initdb costs about 1.5 s), removed after the module."""
    with PrivatePostgres() as cluster:
        cluster.start()
        yield cluster


@pytest.fixture
def server(tmp_path: Path, postgres: PrivatePostgres) -> Iterator[ServerProcess]:
    with ServerProcess(
        tmp_path,
        DATABASE_URL=postgres.url,
        # Nothing cached: every request needs the database.
        SESSION_CACHE="noop",
        TOKEN_METHOD="bearer",
        SUPERADMIN_PASSWORD=PASSWORD,
        LOGIN_RATE_LIMIT="off",
        SESSION_CLEAN_INTERVAL="off",
    ) as process:
        process.start()
        yield process


def health(server: ServerProcess) -> httpx.Response:
    return httpx.get(f"{server.url}/health", timeout=10)


def assert_database_unavailable(response: httpx.Response, postgres: PrivatePostgres) -> dict[str, Any]:
    """One GraphQL error with the stable code and reason, and a message that gives nothing away."""
    assert response.status_code in (200, 503), response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert [error.get("extensions") for error in body["errors"]] == [UNAVAILABLE], body
    message = body["errors"][0]["message"]
    assert message and "\n" not in message
    assert not any(leak in message.lower() for leak in (*LEAKS, str(postgres.port))), message
    return body


def wait_until_healthy_again(server: ServerProcess) -> float:
    """Seconds until /health answered 200 again."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_TIMEOUT:
        try:
            if health(server).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"/health did not answer 200 within {RECOVERY_TIMEOUT} s of the restart:\n{server.log_text()}")


def test_postgres_restarted_while_the_server_runs(server: ServerProcess, postgres: PrivatePostgres) -> None:
    with Timed(server.url) as client:
        guest = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
        order = client.data(ADD_ITEM, guest, v="sku-1", q=1)["addItemToOrder"]
        assert health(server).status_code == 200
        pid = server.process.pid if server.process else None

        postgres.stop()
        try:
            for _ in range(3):
                down = health(server)
                assert down.status_code == 503
                assert down.json()["status"] != "ok"
                # Resolved inside the operation: a masked GraphQL error, HTTP 200.
                created = client.post(CREATE_ANONYMOUS_SESSION)
                assert created.status_code == 200
                assert_database_unavailable(created, postgres)["data"] is None
                lookup = client.post(SESSION_FROM_TOKEN, t=guest)
                assert lookup.status_code == 200
                assert_database_unavailable(lookup, postgres)
                # The bearer token is resolved before any operation runs: the whole request is a 503.
                carrying = client.post(ACTIVE_ORDER, guest)
                assert carrying.status_code == 503
                assert_database_unavailable(carrying, postgres)
        finally:
            postgres.start()

        wait_until_healthy_again(server)
        # The same process serves again, with the data it had before the outage.
        assert server.alive() and server.process is not None and server.process.pid == pid
        assert client.data(SESSION_FROM_TOKEN, t=guest)["sessionFromToken"] == {
            "activeOrderId": order["id"],
            "user": None,
        }
        assert client.data(ACTIVE_ORDER, guest)["activeOrder"] == {
            "id": order["id"],
            "lines": [{"productVariantId": "sku-1", "quantity": 1}],
        }
        every_operation(client, PASSWORD)

        # A restart between two requests: the pool's dead connections are replaced, no request fails.
        postgres.stop()
        postgres.start()
        assert client.data(SESSION_FROM_TOKEN, t=guest)["sessionFromToken"] is not None
        every_operation(client, PASSWORD)
        assert health(server).status_code == 200

    log = server.log_text()
    assert "Traceback" not in log, log
    assert server.log_lines("database unavailable"), log
