"""Test doubles and helpers for the service tests: a movable clock, a recording cache, a SQL log, a service kit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from models import Channel, Order, Permission, Role, User
from server.cache import DefaultSessionCacheStrategy, Fence
from server.cached_session import CachedSession
from server.services import AuthService, ChannelService, OrderService, RoleService, SessionService, UserService
from server.services.request_context import RequestContext
from server.services.tokens import token_digest
from server.settings import Settings

#: The fake clock starts here (2100-01-01T00:00:00Z): a round number keeps datetime arithmetic exact,
#: and being far ahead of the real time, a cache that expires entries by the real clock (Redis TTLs,
#: the default strategy's check of `cache_expiry`) never drops an entry the fake clock thinks fresh.
CLOCK_START = 4_102_444_800.0


class FakeClock:
    """A `clock` for SessionService (unix seconds) that only moves when a test moves it."""

    def __init__(self, start: float = CLOCK_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self, offset: float = 0.0) -> datetime:
        """The aware UTC datetime `offset` seconds from the current time."""
        return datetime.fromtimestamp(self.now + offset, UTC)


class RecordingCache:
    """A SessionCacheStrategy that records every call, storing in a plain dict or in a real `store`.

    Without a store (the sqlite backend) entries live in `entries`, a dict that never expires anything
    by itself, so only SessionService decides when a cached copy is stale. With a store (the postgres
    backend: the default strategy on Redis) every call goes to Redis, and `entries` is a small view of
    that namespace; the fake clock runs far ahead of the real one, so Redis expires nothing early either.
    """

    def __init__(self, store: DefaultSessionCacheStrategy | None = None, redis_url: str | None = None) -> None:
        self.store = store
        self.entries: dict[str, CachedSession] | RedisEntries = (
            {} if store is None else RedisEntries(store.namespace, redis_url or "")
        )
        self.calls: list[tuple[str, str]] = []
        #: without a store: how many deletes and clears happened, and the count at each key's last delete
        self._version = 0
        self._invalidated: dict[str, int] = {}
        self._cleared_at = 0

    async def lookup(self, key: str) -> tuple[CachedSession | None, Fence | None]:
        """Recorded as a "get": the fence comes with the same round trip."""
        self.calls.append(("get", key))
        if self.store is None:
            return self.entries.get(key), Fence(self._version, time.monotonic())
        return await self.store.lookup(key)

    async def set(self, key: str, session: CachedSession, fence: Fence | None = None) -> None:
        self.calls.append(("set", key))
        if self.store is None:
            assert isinstance(self.entries, dict)
            seen = fence.version if fence is not None else None
            if not isinstance(seen, int) or max(self._cleared_at, self._invalidated.get(key, 0)) <= seen:
                self.entries[key] = session
        else:
            await self.store.set(key, session, fence)

    async def get(self, key: str) -> CachedSession | None:
        return (await self.lookup(key))[0]

    async def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        if self.store is None:
            self.entries.pop(key, None)
            self._version += 1
            self._invalidated[key] = self._version
        else:
            await self.store.delete(key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Recorded as one "delete" per key."""
        if self.store is None:
            for key in keys:
                await self.delete(key)
            return
        self.calls.extend(("delete", key) for key in keys)
        await self.store.delete_many(keys)

    async def clear(self) -> None:
        self.calls.append(("clear", ""))
        if self.store is None:
            self.entries.clear()
            self._version += 1
            self._cleared_at = self._version
        else:
            await self.store.clear()

    async def close(self) -> None:
        self.calls.append(("close", ""))

    async def close_store(self) -> None:
        """Release the store's connections (fixture teardown; not a strategy call, not recorded)."""
        if self.store is not None:
            await self.store.close()
        if isinstance(self.entries, RedisEntries):
            self.entries.close()

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def peek(self, token: str) -> CachedSession | None:
        """The cached copy for a raw token, without recording a call."""
        return self.entries.get(token_digest(token))


class RedisEntries:
    """What `RecordingCache.entries` is on Redis: read one entry, or lose them all, synchronously.

    It reads the layout of DefaultSessionCacheStrategy (`{namespace}:gen`, `{namespace}:{gen}:{key}`).
    """

    def __init__(self, namespace: str, redis_url: str) -> None:
        self.namespace = namespace
        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)

    def get(self, key: str) -> CachedSession | None:
        generation = self._client.get(f"{self.namespace}:gen")
        if generation is None:
            return None
        raw = self._client.get(f"{self.namespace}:{int(generation)}:{key}")
        return None if raw is None else CachedSession.from_json(json.loads(raw))

    def pop(self, key: str, default: None = None) -> CachedSession | None:
        found = self.get(key)
        generation = self._client.get(f"{self.namespace}:gen")
        if generation is not None:
            self._client.delete(f"{self.namespace}:{int(generation)}:{key}")
        return found if found is not None else default

    def clear(self) -> None:
        """Every entry of the namespace is lost (as after a Redis restart): the keys are deleted."""
        keys = list(self._client.scan_iter(match=f"{self.namespace}:*", count=1000))
        if keys:
            self._client.delete(*keys)

    def close(self) -> None:
        self._client.close()


class QueryLog(logging.Handler):
    """Collects every SQL statement Tortoise executes.

    Tortoise's clients log each executed statement on the "tortoise.db_client" logger at DEBUG,
    as `log.debug("%s: %s", query, values)` (execute_query, execute_query_dict, execute_insert,
    execute_many) or `log.debug(query)` (execute_script); connection open/close are logged too and
    are skipped here. BEGIN/COMMIT of a transaction are not logged, so only statements are counted.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s: %s" and isinstance(record.args, tuple):
            self.statements.append(str(record.args[0]))
        elif not str(record.msg).startswith(("Created connection", "Closed connection")):
            self.statements.append(record.getMessage())

    def clear(self) -> None:
        self.statements.clear()

    @property
    def count(self) -> int:
        return len(self.statements)

    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


@dataclass
class Kit:
    """Every service wired to one SessionService that runs on `clock` and caches in `cache`."""

    clock: FakeClock
    cache: RecordingCache
    settings: Settings
    sessions: SessionService
    orders: OrderService
    channels: ChannelService
    roles: RoleService
    users: UserService
    auth: AuthService

    async def default_channel(self) -> Channel:
        return await self.channels.get_default_channel()

    async def ctx(self, session: CachedSession | None = None) -> RequestContext:
        return RequestContext(channel_id=(await self.default_channel()).id, session=session)

    async def login(self, user: User, session: CachedSession | None = None) -> CachedSession:
        """A new authenticated session for `user`, as a login from `session` would make it."""
        return await self.sessions.create_new_authenticated_session(await self.ctx(session), user, "native")


KitFactory = Callable[..., Kit]


async def make_user(identifier: str, *roles: Role) -> User:
    """A user without a password (no Argon2 cost), holding `roles`."""
    user = await User.create(identifier=identifier, verified=True)
    if roles:
        await user.roles.add(*roles)
    return user


async def make_role(code: str, permissions: list[Permission], *channels: Channel) -> Role:
    role = await Role.create(code=code, permissions=[p.value for p in permissions])
    if channels:
        await role.channels.add(*channels)
    return role


async def login_with_two_roles(kit: Kit) -> CachedSession:
    """An authenticated session whose user has two roles spread over three channels."""
    default = await kit.default_channel()
    eu, us = await Channel.create(code="eu", token="eu"), await Channel.create(code="us", token="us")
    buyer = await make_role("buyer", [Permission.ReadOrder], default, eu)
    manager = await make_role("manager", [Permission.UpdateOrder, Permission.ReadUser], eu, us)
    return await kit.login(await make_user("alice", buyer, manager))


async def make_order(code: str, user: User | None = None, created_by_session_id: int | None = None) -> Order:
    return await Order.create(code=code, user=user, created_by_session_id=created_by_session_id)
