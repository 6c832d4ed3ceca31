"""The fault steps, and the check that both instances serve correctly again after each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio

from server.services.tokens import token_digest
from tests.faults import CREATE_ANONYMOUS_SESSION, SESSION_FROM_TOKEN
from tests.soak.client import Endpoint
from tests.soak.cluster import CACHE_NAMESPACE, Cluster

RECOVERY_POLL = 0.25


@dataclass(frozen=True)
class Fault:
    name: str
    begin: Callable[[Cluster], None]
    #: lifts the fault after the hold; None: it lifts itself (a restart), with no hold
    end: Callable[[Cluster], None] | None
    database_outage: bool = False


FAULTS = (
    Fault("Redis paused (SIGSTOP, then SIGCONT)", Cluster.pause_redis, Cluster.resume_redis),
    Fault("Redis killed (SIGKILL), then restarted empty", Cluster.kill_redis, Cluster.start_redis),
    Fault("PostgreSQL restarted (pg_ctl restart -m fast)", Cluster.restart_postgres, None, database_outage=True),
    Fault("B cut off from Redis (link down, then up)", Cluster.cut_b_from_redis, Cluster.reconnect_b_to_redis),
)


class Recovery:
    """Whether both instances serve correctly: the same processes, /health 200, a session made on
    either is found on both, and each writes it to Redis under the current generation (the key
    layout of server/cache/default.py), i.e. uses the shared cache again."""

    def __init__(self, cluster: Cluster, endpoints: list[Endpoint]) -> None:
        self.cluster = cluster
        self.endpoints = endpoints
        self._redis = redis.asyncio.Redis(
            host="127.0.0.1", port=cluster.redis.port, socket_timeout=2, socket_connect_timeout=2
        )

    async def wait(self, timeout: float) -> tuple[float | None, str]:
        """Seconds until everything served correctly (None: not within `timeout`), and the last problem seen."""
        started = time.monotonic()
        while True:
            problem = await self._first_problem()
            if problem is None:
                return time.monotonic() - started, ""
            if time.monotonic() - started > timeout:
                return None, problem
            await asyncio.sleep(RECOVERY_POLL)

    async def _first_problem(self) -> str | None:
        restarted = self.cluster.restarted()
        if restarted:
            return f"server process restarted or exited: {', '.join(restarted)}"
        for endpoint in self.endpoints:
            status = await endpoint.health()
            if status != 200:
                return f"/health on {endpoint.name} answered {status}"
        for source in self.endpoints:
            created = await source.call("createAnonymousSession", CREATE_ANONYMOUS_SESSION)
            if not created.ok:
                return created.describe()
            token: str = created.value("createAnonymousSession")["token"]
            for target in self.endpoints:
                found = await target.call("sessionFromToken", SESSION_FROM_TOKEN, t=token)
                if not found.ok or found.value("sessionFromToken") is None:
                    return f"a session made on {source.name} was not found on {target.name}: {found.describe()}"
            if not await self._cached(token):
                return f"{source.name} did not write a new session to Redis"
        return None

    async def _cached(self, token: str) -> bool:
        try:
            generation = await self._redis.get(f"{CACHE_NAMESPACE}:gen")
            if generation is None:
                return False
            return bool(await self._redis.exists(f"{CACHE_NAMESPACE}:{int(generation)}:{token_digest(token)}"))
        except redis.RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
