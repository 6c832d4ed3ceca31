"""Test doubles and helpers for the service tests: a movable clock, a recording cache, a SQL log, a service kit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from models import Channel, Order, Permission, Role, User
from server.services import AuthService, ChannelService, OrderService, RoleService, SessionService, UserService
from server.services.cached_session import CachedSession
from server.services.request_context import RequestContext
from server.services.tokens import token_digest
from server.settings import Settings

#: The fake clock starts here (2027-01-15T08:00:00Z): a round number keeps datetime arithmetic exact.
CLOCK_START = 1_800_000_000.0


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
    """A plain dict cache implementing SessionCacheStrategy that records every call.

    It never expires anything by itself, so only SessionService decides when a cached copy is stale.
    """

    def __init__(self) -> None:
        self.entries: dict[str, CachedSession] = {}
        self.calls: list[tuple[str, str]] = []

    async def set(self, key: str, session: CachedSession) -> None:
        self.calls.append(("set", key))
        self.entries[key] = session

    async def get(self, key: str) -> CachedSession | None:
        self.calls.append(("get", key))
        return self.entries.get(key)

    async def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        self.entries.pop(key, None)

    async def clear(self) -> None:
        self.calls.append(("clear", ""))
        self.entries.clear()

    async def close(self) -> None:
        self.calls.append(("close", ""))

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def peek(self, token: str) -> CachedSession | None:
        """The cached copy for a raw token, without recording a call."""
        return self.entries.get(token_digest(token))


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


async def make_order(code: str, user: User | None = None, created_by_session_id: int | None = None) -> Order:
    return await Order.create(code=code, user=user, created_by_session_id=created_by_session_id)
