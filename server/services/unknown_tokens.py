"""Tokens that name no valid session, remembered in this process so a replayed one costs no query.

Remembering "no session" is safe because an answer of this kind never turns: a token is handed
out only once its row is committed (createAnonymousSession, login, reauthenticate's new token), so
no lookup can see it before it exists; and a session that has ended (deleted, expired, invalidated
by a login) never comes back. Only the answer of the database is remembered, never a cache miss.

The memory is bounded twice: at most SESSION_NEGATIVE_CACHE_SIZE digests (the least recently used
go first), each for SESSION_NEGATIVE_CACHE_TTL at most. A guest session that a login ended is
remembered as such (ENDED_BY_LOGIN) until its grace period is over at the latest, then read again.

Concurrent lookups of one token share a read that ends in "no session": a flood of one unknown
token reaches the database once, not once per request in flight. A read that finds a live session
is never shared, since each lookup caches what it read behind its own fence.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class EndedByLogin:
    """What a token resolves to while its guest session, just merged into a login, is remembered as ended."""


class Unknown:
    """What a token resolves to when it names no valid session (the service answers None)."""


ENDED_BY_LOGIN = EndedByLogin()
UNKNOWN = Unknown()
#: Answers about a token that stay true once the database has given them.
DeadAnswer = EndedByLogin | Unknown


class UnknownTokens:
    """At most `size` token digests that name no valid session, each for `ttl` seconds of `clock`
    at most; `size` 0 (or `ttl` None) remembers nothing. Every operation is O(1)."""

    def __init__(self, size: int, ttl: float | None, clock: Callable[[], float]) -> None:
        self._size = size if ttl is not None else 0
        self._ttl = ttl or 0.0
        self._clock = clock
        #: digest -> (answer, the clock's time when it is forgotten), least recently used first
        self._answers: OrderedDict[str, tuple[DeadAnswer, float]] = OrderedDict()
        #: digests whose database read is in flight, and the event set when it is over
        self._reads: dict[str, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, key: str) -> DeadAnswer | None:
        """The remembered answer for `key`, or None when nothing (fresh) is remembered."""
        entry = self._answers.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return entry[0]

    def remember(self, key: str, answer: DeadAnswer, until: float | None = None) -> None:
        """Remember `answer` for `key` for the TTL, and not past `until` (the clock's time) when given."""
        if self._size == 0:
            return
        forget_at = self._clock() + self._ttl
        self._answers[key] = (answer, forget_at if until is None else min(forget_at, until))
        self._answers.move_to_end(key)
        if len(self._answers) > self._size:
            self._answers.popitem(last=False)

    async def read_once(self, key: str, read: Callable[[str], Awaitable[T]]) -> T | DeadAnswer:
        """`read(key)`, unless a read of `key` is already in flight: then its answer, if it remembered
        one, else a read of this lookup's own."""
        if self._size == 0:
            return await read(key)
        pending = self._reads.get(key)
        if pending is not None:
            await pending.wait()
            remembered = self.answer(key)
            return remembered if remembered is not None else await read(key)
        done = self._reads[key] = asyncio.Event()
        try:
            return await read(key)
        finally:
            del self._reads[key]
            done.set()
