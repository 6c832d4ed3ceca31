"""Cache faults injected for real: `python -m server` on a Redis of the test's own that is not
running yet, is stopped and restarted, or is frozen with DEBUG SLEEP.

Through every fault each operation keeps working from the database, each request stays within a
bound made of SESSION_CACHE_TIMEOUT_MS per cache call plus database time (never the length of the
outage), the outage is logged once, and caching resumes by itself when Redis answers again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.services.cache_outages import NOTICE_SECONDS
from server.services.tokens import token_digest
from tests.faults import (
    CREATE_ANONYMOUS_SESSION,
    LOGIN,
    LOGOUT,
    SESSION_FROM_TOKEN,
    PrivateRedis,
    ServerProcess,
    Timed,
    every_operation,
)

PASSWORD = "faults-not-the-default"
NAMESPACE = "faults"
UNAVAILABLE = "session cache unavailable"
AVAILABLE_AGAIN = "session cache available again"
#: Sequential cache calls one request may make (session lookup and re-cache, the operation's own
#: writes, the deletes of a login); each is bounded by SESSION_CACHE_TIMEOUT_MS.
CACHE_CALLS_PER_REQUEST = 6
#: Database and HTTP time on a loaded test machine: generous, so the bound tests the cache, not the box.
DATABASE_ALLOWANCE = 0.5
#: Login verifies an Argon2 hash at production cost in the server process.
PASSWORD_HASH_ALLOWANCE = 1.5


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis, created stopped; stopped again after the test whatever happened."""
    with PrivateRedis(tmp_path) as server:
        yield server


def start_server(tmp_path: Path, redis_server: PrivateRedis, timeout_ms: int) -> ServerProcess:
    server = ServerProcess(
        tmp_path,
        DATABASE_URL=f"sqlite://{tmp_path / 'db' / 'sessions.sqlite3'}",
        SESSION_CACHE=redis_server.url,
        SESSION_CACHE_FIRST_TIER="false",  # faults of Redis itself; the first tier's are in test_invalidation_e2e.py
        SESSION_CACHE_NAMESPACE=NAMESPACE,
        SESSION_CACHE_TIMEOUT_MS=str(timeout_ms),
        TOKEN_METHOD="bearer",
        SUPERADMIN_PASSWORD=PASSWORD,
        LOGIN_RATE_LIMIT="off",
    )
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def assert_latencies_bounded(client: Timed, since: int, timeout_ms: int) -> None:
    """Every request from `since` on answered within the cache budget plus database time, but one:
    the first invalidation of an outage also waits NOTICE_SECONDS, until every instance has stopped
    trusting the shared cache (server/services/cache_outages.py)."""
    budget = CACHE_CALLS_PER_REQUEST * timeout_ms / 1000 + DATABASE_ALLOWANCE
    over = []
    for operation, seconds in client.latencies[since:]:
        limit = budget + (PASSWORD_HASH_ALLOWANCE if operation == "login" else 0)
        assert seconds < limit + NOTICE_SECONDS, f"{operation} took {seconds:.3f} s: {client.latencies}"
        if seconds >= limit:
            over.append((operation, seconds))
    assert len(over) <= 1, f"{over} took longer than {budget:.3f} s: {client.latencies}"


def assert_cached_again(client: Timed, redis_server: PrivateRedis, token: str) -> None:
    """A lookup of `token` caches it under the namespace, and the next lookup is served by Redis."""
    key_pattern = f"{NAMESPACE}:*:{token_digest(token)}"
    assert client.data(SESSION_FROM_TOKEN, t=token)["sessionFromToken"] is not None
    assert redis_server.keys(key_pattern), redis_server.keys()
    with redis_server.client() as raw:
        hits = int(raw.info("stats")["keyspace_hits"])
        assert client.data(SESSION_FROM_TOKEN, t=token)["sessionFromToken"] is not None
        assert int(raw.info("stats")["keyspace_hits"]) > hits


def test_redis_not_running_at_start_then_started(tmp_path: Path, redis_server: PrivateRedis) -> None:
    timeout_ms = 100
    with start_server(tmp_path, redis_server, timeout_ms) as server, Timed(server.url) as client:
        # Redis has never run: everything works from the database.
        for _ in range(3):
            every_operation(client, PASSWORD)
        guest = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
        assert client.data(SESSION_FROM_TOKEN, t=guest)["sessionFromToken"] is not None
        assert len(client.latencies) > 25
        assert_latencies_bounded(client, 0, timeout_ms)
        warnings = server.log_lines(UNAVAILABLE)
        assert len(warnings) == 1, warnings
        assert "WARNING" in warnings[0] and "ConnectionError" in warnings[0]
        assert server.log_lines(AVAILABLE_AGAIN) == []

        redis_server.start()
        assert redis_server.keys(f"{NAMESPACE}:*") == []
        since = len(client.latencies)
        assert_cached_again(client, redis_server, guest)
        every_operation(client, PASSWORD)
        assert_latencies_bounded(client, since, timeout_ms)
        assert len(server.log_lines(UNAVAILABLE)) == 1
        recovered = server.log_lines(AVAILABLE_AGAIN)
        assert len(recovered) == 1 and "INFO" in recovered[0], recovered
        assert "Traceback" not in server.log_text()


def test_redis_stopped_and_restarted_while_the_server_runs(tmp_path: Path, redis_server: PrivateRedis) -> None:
    timeout_ms = 100
    redis_server.start()
    with start_server(tmp_path, redis_server, timeout_ms) as server, Timed(server.url) as client:
        every_operation(client, PASSWORD)
        guest = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
        assert_cached_again(client, redis_server, guest)
        assert server.log_lines(UNAVAILABLE) == []

        for outage in (1, 2):
            redis_server.stop()
            since = len(client.latencies)
            every_operation(client, PASSWORD)
            # The guest's session is still there, now read from the database.
            for _ in range(5):
                assert client.data(SESSION_FROM_TOKEN, t=guest)["sessionFromToken"] is not None
            assert_latencies_bounded(client, since, timeout_ms)
            assert len(server.log_lines(UNAVAILABLE)) == outage, server.log_text()

            redis_server.start()  # empty: a restarted cache has lost every entry
            since = len(client.latencies)
            assert_cached_again(client, redis_server, guest)
            every_operation(client, PASSWORD)
            assert_latencies_bounded(client, since, timeout_ms)
            assert len(server.log_lines(AVAILABLE_AGAIN)) == outage, server.log_text()
            assert len(server.log_lines(UNAVAILABLE)) == outage
        assert "Traceback" not in server.log_text()


def test_a_slow_redis_triggers_the_fallback_instead_of_slowing_requests(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    timeout_ms = 50
    freeze = 6.0
    redis_server.start()
    with start_server(tmp_path, redis_server, timeout_ms) as server, Timed(server.url) as client:
        every_operation(client, PASSWORD)
        guest = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
        login = client.data(LOGIN, guest, u="superadmin", p=PASSWORD)["login"]
        member = login["token"]
        assert_cached_again(client, redis_server, member)

        with redis_server.frozen(freeze) as thaws_at:
            since = len(client.latencies)
            every_operation(client, PASSWORD)
            # Logged out while the cache cannot hear of it: its cached copy must never be served again.
            assert client.data(LOGOUT, member)["logout"] == {"success": True}
            for _ in range(5):
                assert client.data(SESSION_FROM_TOKEN, t=member)["sessionFromToken"] is None
            frozen_requests = len(client.latencies) - since
            assert time.monotonic() < thaws_at, "the requests did not all run while Redis was frozen"
        assert_latencies_bounded(client, since, timeout_ms)
        slowest = client.slowest(since)
        assert slowest[1] < freeze / 2, slowest
        warnings = server.log_lines(UNAVAILABLE)
        assert len(warnings) == 1 and "TimeoutError" in warnings[0], (frozen_requests, warnings)

        # Redis answers again, with every entry it held before the freeze.
        assert client.data(SESSION_FROM_TOKEN, t=member)["sessionFromToken"] is None
        fresh = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
        assert_cached_again(client, redis_server, fresh)
        assert client.data(SESSION_FROM_TOKEN, t=member)["sessionFromToken"] is None
        every_operation(client, PASSWORD)
        assert len(server.log_lines(AVAILABLE_AGAIN)) == 1, server.log_text()
        assert len(server.log_lines(UNAVAILABLE)) == 1
        assert "Traceback" not in server.log_text()
