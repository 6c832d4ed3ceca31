"""Argon2id password hashing in a small pool of low-priority threads, so the event loop keeps serving.

The costs are PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_TIME_COST (at least OWASP's minimum, by
default exactly it: 19 MiB, 2 passes) with one lane: a hash then takes one core for ~15 ms here,
and the pool's PASSWORD_HASH_THREADS (by default the cores less the one the event loop needs)
bounds the cores and memory all of them take at once.

argon2-cffi calls the C library through cffi, which releases the GIL for the call, so a hash does
not block the event loop's thread; what it can still take is CPU time. The pool's threads therefore
run at a lower scheduling priority (Linux keeps a nice value per thread): when the event loop has
work, the kernel gives it the core first. (What a login storm still costs the lookups is the logins'
own work on the event loop: see bench/README.md, "Login storm".)

Hashes wait for a thread in a bounded queue (PASSWORD_HASH_QUEUE): a login that would queue behind
more fails at once with RATE_LIMITED (retryAfter 1) instead of waiting seconds for a client that
has given up, while every hash admitted still costs CPU (see README.md, "Password hashing").

`configure` applies the settings for the whole process (the CLI and each worker call it once at
start); until then the defaults apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.services.errors import RateLimitedError
from server.settings import Settings

_T = TypeVar("_T")
#: How much nicer than the event loop's thread the hashing threads run (Linux: 0 highest .. 19 lowest).
HASHING_NICENESS = 19
#: One lane per hash: more lanes would spawn threads inside the C library, past the pool's bound.
PARALLELISM = 1


class HashingBusyError(RateLimitedError):
    """More password checks are waiting than PASSWORD_HASH_QUEUE allows: RATE_LIMITED, retry in a second."""

    def __init__(self) -> None:
        super().__init__(1)
        self.message = "Too many password checks at once: try again in 1 seconds"
        self.args = (self.message,)


class HashingPool:
    """`threads` low-priority worker threads; at most `queue` calls wait for one (HashingBusyError past that)."""

    def __init__(self, threads: int, queue: int) -> None:
        self.threads = threads
        self.queue = queue
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="argon2", initializer=_lower_priority)
        self._lock = threading.Lock()
        self._admitted = 0  # running or waiting; a call counts until its thread is done with it

    async def run(self, function: Callable[..., _T], *args: object) -> _T:
        with self._lock:
            if self._admitted >= self.threads + self.queue:
                raise HashingBusyError()
            self._admitted += 1
        try:
            future: Future[_T] = self._executor.submit(function, *args)
        except BaseException:
            self._release(None)
            raise
        # Released when the thread is done (or the call, cancelled while waiting, is dropped unrun):
        # a caller that gave up must not free the slot of a hash still running.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: object) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    # setpriority() on a thread id sets that thread's nice value alone (Linux); elsewhere nothing changes.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


def build_hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=PARALLELISM, type=Type.ID)


def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("no such user: this hash only makes failures take equal time")


_DEFAULTS = Settings()
_hasher = build_hasher(_DEFAULTS.password_hash_memory_kib, _DEFAULTS.password_hash_time_cost)
#: Verified against when the user does not exist, so both failures cost the same time (same costs as _hasher).
_DUMMY_HASH = _dummy_hash(_hasher)
_pool = HashingPool(_DEFAULTS.hashing_threads, _DEFAULTS.password_hash_queue)


def configure(settings: Settings) -> None:
    """Hash with the costs, threads and queue of `settings` from now on, in this whole process."""
    global _hasher, _DUMMY_HASH, _pool
    _hasher = build_hasher(settings.password_hash_memory_kib, settings.password_hash_time_cost)
    _DUMMY_HASH = _dummy_hash(_hasher)
    previous, _pool = _pool, HashingPool(settings.hashing_threads, settings.password_hash_queue)
    previous.shutdown()


async def hash_password(password: str) -> str:
    return await _pool.run(_hasher.hash, _utf8(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await _pool.run(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other costs than today's (or is no Argon2id hash): cheap, no hashing."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, _utf8(password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _utf8(password: str) -> bytes:
    # A lone surrogate (JSON can carry one) is hashed like any other character instead of failing to encode.
    return password.encode("utf-8", "surrogatepass")
