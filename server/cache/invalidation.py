"""How instances tell one another which cached sessions to drop: Redis pub/sub or PostgreSQL LISTEN/NOTIFY.

A message names the instance that sent it and either the cache keys (token digests) of sessions
changed or ended in the database, or a clear of every cached session. It is published after the
database commit that made the copies wrong. A channel's listener calls back when it is subscribed
(from then on no message is missed) and when its connection is lost (messages may have been missed):
the coherent tier (server/cache/coherent.py) stops trusting its copies in between.

Beside invalidations, instances publish beats and departures (server/cache/membership.py) and send
acknowledgements, each on a channel of its own (`channel_names`) held by the same subscription, so
that one instance receives all of them in the order the channel accepted them.

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
    """Drop `keys` (or everything, when `clear`) from the cache of every instance but `sender`, and
    acknowledge `number` to it (0: a sender that awaits no acknowledgement)."""

    sender: str
    keys: tuple[str, ...] = ()
    clear: bool = False
    number: int = 0

    def encode(self) -> str:
        body: dict[str, Any] = {"s": self.sender, "c": True} if self.clear else {"s": self.sender, "k": self.keys}
        if self.number:
            body["n"] = self.number
        return _compact(body)


@dataclass(frozen=True, slots=True)
class Beat:
    """`sender` listens and may trust its first tier (its own beat coming back renews its lease)."""

    sender: str
    number: int

    def encode(self) -> str:
        return _compact({"t": "beat", "s": self.sender, "n": self.number})


@dataclass(frozen=True, slots=True)
class Departure:
    """`sender` has stopped trusting its first tier for good: nobody need wait for it any more."""

    sender: str

    def encode(self) -> str:
        return _compact({"t": "departure", "s": self.sender})


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """`sender` applied the invalidations of the instance it is sent to, up to `number`."""

    sender: str
    number: int

    def encode(self) -> str:
        return _compact({"t": "ack", "s": self.sender, "n": self.number})


Message = Invalidation | Beat | Departure | Acknowledgement


def _compact(body: dict[str, Any]) -> str:
    """A message's JSON without spaces (NOTIFY carries at most 8000 bytes)."""
    return json.dumps(body, separators=(",", ":"))


def decode(payload: str | bytes) -> Message:
    body = json.loads(payload)
    sender = str(body["s"])
    kind = body.get("t")
    if kind == "beat":
        return Beat(sender, int(body["n"]))
    if kind == "departure":
        return Departure(sender)
    if kind == "ack":
        return Acknowledgement(sender, int(body["n"]))
    number = int(body.get("n", 0))
    if body.get("c"):
        return Invalidation(sender, clear=True, number=number)
    return Invalidation(sender, tuple(str(key) for key in body["k"]), number=number)


def split(sender: str, keys: Sequence[str]) -> list[Invalidation]:
    """The messages that name `keys`, KEYS_PER_MESSAGE at most each."""
    return [
        Invalidation(sender, tuple(keys[start : start + KEYS_PER_MESSAGE]))
        for start in range(0, len(keys), KEYS_PER_MESSAGE)
    ]


def channel_names(name: str, instance: str) -> tuple[str, str, str]:
    """Where invalidations go (the only channel earlier versions listen on), where beats and departures
    go, and where `instance`'s acknowledgements go. One subscription holds all three, so what is
    published on them arrives in the order it was accepted."""
    return name, f"{name}_beats", f"{name}_{instance}"


def _channel_of(name: str, message: Message, to: str | None) -> str:
    invalidations, beats, _ = channel_names(name, "")
    if isinstance(message, Invalidation):
        return invalidations
    if isinstance(message, Acknowledgement):
        assert to is not None, "an acknowledgement is sent to one instance"
        return channel_names(name, to)[2]
    return beats


class Listener(Protocol):
    """What a channel's listener reports to."""

    #: the instance whose acknowledgements the listener receives
    instance: str

    def subscribed(self) -> None:
        """Every message published from now on will be received."""

    def lost(self, reason: str) -> None:
        """Messages may have been missed since `subscribed`, until it is called again."""

    def received(self, message: Message) -> None: ...


class InvalidationChannel(Protocol):
    async def publish(self, message: Message, to: str | None = None) -> None:
        """Send `message` to every instance listening (an acknowledgement: to instance `to`); raises if it
        could not be sent."""

    async def listen(self, listener: Listener) -> None:
        """Receive until cancelled, reconnecting after each loss."""


class RedisInvalidationChannel:
    """Redis pub/sub on `name`. `client` publishes (the shared client, its calls bounded by its socket
    timeouts); `subscriber` is a client of its own, without retries, whose connection the subscription holds."""

    def __init__(self, client: Any, subscriber: Any, name: str) -> None:
        self._client = client
        self._subscriber = subscriber
        self.name = name

    async def publish(self, message: Message, to: str | None = None) -> None:
        await self._client.publish(_channel_of(self.name, message, to), message.encode())

    async def listen(self, listener: Listener) -> None:
        await _reconnecting(self._listen_once, listener, "redis")

    async def _listen_once(self, listener: Listener) -> None:
        pubsub = self._subscriber.pubsub()
        loop = asyncio.get_running_loop()
        try:
            names = channel_names(self.name, listener.instance)
            await asyncio.wait_for(self._subscribe(pubsub, names), HEARTBEAT_TIMEOUT_SECONDS)
            listener.subscribed()
            heard = pinged = loop.time()
            while True:
                item = await pubsub.get_message(timeout=HEARTBEAT_SECONDS / 4)
                now = loop.time()
                if item is not None:
                    heard = now
                    if item["type"] == "message":
                        listener.received(decode(item["data"]))
                if now - heard > HEARTBEAT_SECONDS + HEARTBEAT_TIMEOUT_SECONDS:
                    raise TimeoutError("no answer to the heartbeat")
                if now - pinged >= HEARTBEAT_SECONDS:
                    await pubsub.ping()
                    pinged = now
        finally:
            await _quietly(pubsub.aclose())

    async def _subscribe(self, pubsub: Any, names: Sequence[str]) -> None:
        await pubsub.subscribe(*names)
        confirmed = 0
        while confirmed < len(names):
            item = await pubsub.get_message(timeout=HEARTBEAT_TIMEOUT_SECONDS)
            if item is not None and item["type"] == "subscribe":
                confirmed += 1


class PostgresInvalidationChannel:
    """LISTEN/NOTIFY on `name`. `notify(name, payload)` runs `SELECT pg_notify($1, $2)` on the service's
    pool; `connect()` opens the listener's own asyncpg connection."""

    def __init__(
        self, notify: Callable[[str, str], Awaitable[None]], connect: Callable[[], Awaitable[Any]], name: str
    ) -> None:
        self._notify = notify
        self._connect = connect
        self.name = name

    async def publish(self, message: Message, to: str | None = None) -> None:
        await self._notify(_channel_of(self.name, message, to), message.encode())

    async def listen(self, listener: Listener) -> None:
        await _reconnecting(self._listen_once, listener, "postgresql")

    async def _listen_once(self, listener: Listener) -> None:
        connection = await asyncio.wait_for(self._connect(), HEARTBEAT_TIMEOUT_SECONDS)
        closed = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: closed.set())

            def deliver(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
                listener.received(decode(payload))

            for name in channel_names(self.name, listener.instance):
                await asyncio.wait_for(connection.add_listener(name, deliver), HEARTBEAT_TIMEOUT_SECONDS)
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
