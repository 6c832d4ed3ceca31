"""How instances tell one another which cached sessions to drop: Redis pub/sub or PostgreSQL LISTEN/NOTIFY.

A message names the instance that sent it and either the cache keys (token digests) of sessions
changed or ended in the database, or a clear of every cached session. It is published after the
database commit that made the copies wrong. A channel's listener calls back when it is subscribed
(from then on no message is missed) and when its connection is lost (messages may have been missed):
the coherent tier (server/cache/coherent.py) stops trusting its copies in between.

A connection that dies quietly is noticed by a heartbeat: every HEARTBEAT_SECONDS the listener asks
for an answer (PING on Redis, `SELECT 1` on PostgreSQL) and gives the connection up when none comes
within HEARTBEAT_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
HEARTBEAT_TIMEOUT_SECONDS = 1.0
#: Waits between attempts to reconnect a lost listener: doubled from the first to the last.
RECONNECT_SECONDS = (0.05, 1.0)
#: NOTIFY carries at most 8000 bytes: 100 digests of 64 characters, quoted and separated, fit well.
KEYS_PER_MESSAGE = 100


@dataclass(frozen=True, slots=True)
class Invalidation:
    """Drop `keys` (or everything, when `clear`) from the cache of every instance but `sender`."""

    sender: str
    keys: tuple[str, ...] = ()
    clear: bool = False

    def encode(self) -> str:
        body: dict[str, Any] = {"s": self.sender, "c": True} if self.clear else {"s": self.sender, "k": self.keys}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, payload: str | bytes) -> Invalidation:
        body = json.loads(payload)
        if body.get("c"):
            return cls(str(body["s"]), clear=True)
        return cls(str(body["s"]), tuple(str(key) for key in body["k"]))


def split(sender: str, keys: Sequence[str]) -> list[Invalidation]:
    """The messages that name `keys`, KEYS_PER_MESSAGE at most each."""
    return [
        Invalidation(sender, tuple(keys[start : start + KEYS_PER_MESSAGE]))
        for start in range(0, len(keys), KEYS_PER_MESSAGE)
    ]


class Listener(Protocol):
    """What a channel's listener reports to."""

    def subscribed(self) -> None:
        """Every message published from now on will be received."""

    def lost(self, reason: str) -> None:
        """Messages may have been missed since `subscribed`, until it is called again."""

    def received(self, message: Invalidation) -> None: ...


class InvalidationChannel(Protocol):
    async def publish(self, message: Invalidation) -> None:
        """Send `message` to every instance listening; raises if it could not be sent."""

    async def listen(self, listener: Listener) -> None:
        """Receive until cancelled, reconnecting after each loss."""


class RedisInvalidationChannel:
    """Redis pub/sub on `name`. `client` publishes (the shared client, its calls bounded by its socket
    timeouts); `subscriber` is a client of its own, without retries, whose connection the subscription holds."""

    def __init__(self, client: Any, subscriber: Any, name: str) -> None:
        self._client = client
        self._subscriber = subscriber
        self.name = name

    async def publish(self, message: Invalidation) -> None:
        await self._client.publish(self.name, message.encode())

    async def listen(self, listener: Listener) -> None:
        await _reconnecting(self._listen_once, listener, "redis")

    async def _listen_once(self, listener: Listener) -> None:
        pubsub = self._subscriber.pubsub()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._subscribe(pubsub), HEARTBEAT_TIMEOUT_SECONDS)
            listener.subscribed()
            heard = pinged = loop.time()
            while True:
                item = await pubsub.get_message(timeout=HEARTBEAT_SECONDS / 4)
                now = loop.time()
                if item is not None:
                    heard = now
                    if item["type"] == "message":
                        listener.received(Invalidation.decode(item["data"]))
                if now - heard > HEARTBEAT_SECONDS + HEARTBEAT_TIMEOUT_SECONDS:
                    raise TimeoutError("no answer to the heartbeat")
                if now - pinged >= HEARTBEAT_SECONDS:
                    await pubsub.ping()
                    pinged = now
        finally:
            await _quietly(pubsub.aclose())

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.subscribe(self.name)
        while True:
            item = await pubsub.get_message(timeout=HEARTBEAT_TIMEOUT_SECONDS)
            if item is not None and item["type"] == "subscribe":
                return


class PostgresInvalidationChannel:
    """LISTEN/NOTIFY on `name`. `notify(name, payload)` runs `SELECT pg_notify($1, $2)` on the service's
    pool; `connect()` opens the listener's own asyncpg connection."""

    def __init__(
        self, notify: Callable[[str, str], Awaitable[None]], connect: Callable[[], Awaitable[Any]], name: str
    ) -> None:
        self._notify = notify
        self._connect = connect
        self.name = name

    async def publish(self, message: Invalidation) -> None:
        await self._notify(self.name, message.encode())

    async def listen(self, listener: Listener) -> None:
        await _reconnecting(self._listen_once, listener, "postgresql")

    async def _listen_once(self, listener: Listener) -> None:
        connection = await asyncio.wait_for(self._connect(), HEARTBEAT_TIMEOUT_SECONDS)
        closed = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: closed.set())

            def deliver(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
                listener.received(Invalidation.decode(payload))

            await asyncio.wait_for(connection.add_listener(self.name, deliver), HEARTBEAT_TIMEOUT_SECONDS)
            listener.subscribed()
            while True:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), HEARTBEAT_TIMEOUT_SECONDS)
                try:
                    await asyncio.wait_for(closed.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    continue
                raise ConnectionError("the listening connection was closed")
        finally:
            connection.terminate()


async def _reconnecting(listen_once: Callable[[Listener], Awaitable[None]], listener: Listener, name: str) -> None:
    """Run `listen_once` again after every loss (it only ever returns by raising), backing off while it
    keeps failing at once."""
    loop = asyncio.get_running_loop()
    wait = RECONNECT_SECONDS[0]
    while True:
        started = loop.time()
        try:
            await listen_once(listener)
        except Exception as error:
            listener.lost(f"{name}: {type(error).__name__}")
        wait = RECONNECT_SECONDS[0] if loop.time() - started > RECONNECT_SECONDS[1] else wait
        await asyncio.sleep(wait)
        wait = min(wait * 2, RECONNECT_SECONDS[1])


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception as error:
        logger.debug("closing the invalidation listener failed: %s", type(error).__name__)
