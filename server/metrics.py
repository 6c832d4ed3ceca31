"""What the service counts, and `/metrics` in the Prometheus text format (prometheus-client).

One process: the metrics live in this process's default registry. Several workers
(WEB_CONCURRENCY > 1): prometheus-client's multiprocess mode. The parent creates a fresh temporary
directory, names it in PROMETHEUS_MULTIPROC_DIR before any worker starts (the mode is chosen when
prometheus-client is imported), and removes it at exit; each worker writes its samples to files of
its own there, and a scrape, answered by whichever worker (or by the parent's METRICS_ADDRESS
listener), sums every worker's files. Counters and histograms of a worker that died are kept, so
totals never go back; the per-worker gauge of a dead worker is removed (`mark_process_dead`).
Per-worker ports were not chosen: one scrape target whatever the number of workers.

Call sites record through the small functions below, never through the metric objects, so the
metric names and labels stay in this one module.
"""

from __future__ import annotations

import os
import threading
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

LookupOutcome = Literal["first_tier", "second_tier", "database", "unknown", "negative_cache"]
LoginOutcome = Literal["success", "invalid", "not_verified", "rate_limited"]
SessionType = Literal["anonymous", "authenticated"]
#: why sessions ended before their time: a logout, deleteSessionsByUser, deleteSessionsByActiveOrderId,
#: the user's password changed or the user deleted, a login that replaced a guest session, its owner
#: ending another of their sessions (revokeSession, logoutOtherSessions), an administrator's revokeSession,
#: the oldest sessions of a user over SESSION_LIMIT_PER_USER, the old token of a session that reauthenticated
#: (the session lives on under a new one)
RevokeReason = Literal[
    "logout",
    "user",
    "active_order",
    "password_changed",
    "user_deleted",
    "login",
    "revoked_by_owner",
    "revoked_by_admin",
    "session_limit",
    "reauthenticated",
]
CleanOutcome = Literal["ok", "failed"]

_PREFIX = "session_service"

LOOKUPS = Counter(
    f"{_PREFIX}_session_lookups",
    "Token lookups by where the answer came from: first_tier (in-process cache), second_tier (Redis),"
    " database, unknown (no valid session for the token), negative_cache (no valid session, as this process"
    " remembered from an earlier lookup, without the cache or the database)",
    ["outcome"],
)
LOOKUP_SECONDS = Histogram(
    f"{_PREFIX}_session_lookup_seconds",
    "Time to turn a request's token into its session (cache, then database)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WORKER_LOOKUPS = Gauge(
    f"{_PREFIX}_worker_session_lookups",
    "Token lookups answered by this server process (a pid label per worker when there are several)",
    multiprocess_mode="liveall",
)
CACHE_FALLBACKS = Counter(
    f"{_PREFIX}_cache_fallbacks", "Session cache calls that failed or timed out, answered from the database instead"
)
CACHE_OUTAGES = Counter(f"{_PREFIX}_cache_outages", "Times the session cache became unavailable")
INVALIDATIONS_SENT = Counter(f"{_PREFIX}_invalidations_sent", "Invalidation messages published to other instances")
INVALIDATIONS_RECEIVED = Counter(
    f"{_PREFIX}_invalidations_received", "Invalidation messages received from other instances"
)
INVALIDATIONS_UNACKNOWLEDGED = Counter(
    f"{_PREFIX}_invalidations_unacknowledged",
    "Invalidations of this instance that some instance did not acknowledge, so its lease had to run out",
)
SESSIONS_CREATED = Counter(f"{_PREFIX}_sessions_created", "Sessions created", ["type"])
SESSIONS_REVOKED = Counter(f"{_PREFIX}_sessions_revoked", "Sessions ended before their time, by reason", ["reason"])
LOGIN_ATTEMPTS = Counter(f"{_PREFIX}_login_attempts", "Native login attempts by outcome", ["outcome"])
CLEAN_RUNS = Counter(f"{_PREFIX}_session_clean_runs", "Scheduled clean-ups of expired sessions", ["outcome"])
CLEAN_REMOVED = Counter(f"{_PREFIX}_session_clean_removed", "Expired or idle sessions removed by the clean job")
SESSION_EVENTS_UNSTORED = Counter(
    f"{_PREFIX}_session_events_unstored",
    "Session events counted but not stored (guest sessions, unknown identifiers, repeated rate-limit refusals)",
    ["type", "reason"],
)

# Children bound once: `labels()` costs a lock and a dictionary lookup on every call otherwise.
_LOOKUPS = {
    outcome: LOOKUPS.labels(outcome)
    for outcome in ("first_tier", "second_tier", "database", "unknown", "negative_cache")
}
_LOGINS = {
    outcome: LOGIN_ATTEMPTS.labels(outcome) for outcome in ("success", "invalid", "not_verified", "rate_limited")
}


def record_lookup(outcome: LookupOutcome) -> None:
    """One token lookup, by where its answer came from."""
    _LOOKUPS[outcome].inc()


def observe_lookup_seconds(seconds: float) -> None:
    """The time one token lookup took (measured around the service call by the request context)."""
    LOOKUP_SECONDS.observe(seconds)
    WORKER_LOOKUPS.inc()


def record_cache_fallback() -> None:
    """A cache call failed or timed out and the database answered instead."""
    CACHE_FALLBACKS.inc()


def record_cache_outage() -> None:
    """The cache went from working to failing (once per outage)."""
    CACHE_OUTAGES.inc()


def record_invalidation_sent(messages: int = 1) -> None:
    INVALIDATIONS_SENT.inc(messages)


def record_invalidation_received(messages: int = 1) -> None:
    INVALIDATIONS_RECEIVED.inc(messages)


def record_invalidation_unacknowledged() -> None:
    INVALIDATIONS_UNACKNOWLEDGED.inc()


def record_session_created(session_type: SessionType) -> None:
    SESSIONS_CREATED.labels(session_type).inc()


def record_sessions_revoked(reason: RevokeReason, count: int = 1) -> None:
    if count > 0:
        SESSIONS_REVOKED.labels(reason).inc(count)


def record_login(outcome: LoginOutcome) -> None:
    _LOGINS[outcome].inc()


def record_clean_run(outcome: CleanOutcome) -> None:
    CLEAN_RUNS.labels(outcome).inc()


def record_clean_removed(count: int) -> None:
    if count > 0:
        CLEAN_REMOVED.inc(count)


def record_session_events_unstored(event_type: str, reason: str, count: int = 1) -> None:
    """Session events of a kind anyone can cause without an account, counted instead of stored."""
    if count > 0:
        SESSION_EVENTS_UNSTORED.labels(event_type, reason).inc(count)


def is_multiprocess() -> bool:
    return MULTIPROCESS_ENV in os.environ


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process's registry."""
    if not is_multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


async def metrics(request: Request) -> Response:
    """GET /metrics: every metric in the Prometheus text format."""
    return Response(generate_latest(scrape_registry()), media_type=CONTENT_TYPE_LATEST)


def start_metrics_listener(host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """prometheus-client's own HTTP server on `host:port` (METRICS_ADDRESS), in a daemon thread."""
    return start_http_server(port, addr=host, registry=scrape_registry())


def forget_worker(pid: int) -> None:
    """A worker exited: drop its per-worker gauge (its counters stay in the totals)."""
    if is_multiprocess():
        mark_process_dead(pid)  # type: ignore[no-untyped-call]
