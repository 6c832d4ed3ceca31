"""Password hashing: Argon2id at OWASP's minimum or stronger, in a bounded pool that never starves the event loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest
from argon2 import PasswordHasher, Type

from server.services import passwords
from server.services.errors import RateLimitedError
from server.services.passwords import HashingBusyError, HashingPool, build_hasher
from server.settings import Settings

PASSWORD = "correct horse battery staple"
#: What argon2-cffi makes by default (t=3, m=64 MiB, p=4): the costs of hashes stored before explicit ones.
LIBRARY_DEFAULT_HASH = PasswordHasher().hash(PASSWORD)


@pytest.fixture
def production_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default settings' costs instead of the tests' cheap ones."""
    defaults = Settings()
    monkeypatch.setattr(
        passwords, "_hasher", build_hasher(defaults.password_hash_memory_kib, defaults.password_hash_time_cost)
    )


@pytest.fixture
def own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """`configure` may replace (and shut down) the module's pool: the test's pool is its own, and the
    module's state is put back afterwards."""
    for name in ("_hasher", "_DUMMY_HASH"):
        monkeypatch.setattr(passwords, name, getattr(passwords, name))
    monkeypatch.setattr(passwords, "_pool", HashingPool(1, 4))


def test_the_default_costs_are_owasps_argon2id_minimum() -> None:
    defaults = Settings()
    hashed = build_hasher(defaults.password_hash_memory_kib, defaults.password_hash_time_cost).hash(PASSWORD)

    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_the_dummy_hash_has_the_costs_of_real_hashes() -> None:
    defaults = Settings()
    hasher = build_hasher(defaults.password_hash_memory_kib, defaults.password_hash_time_cost)

    assert hasher.check_needs_rehash(passwords._DUMMY_HASH) is False


def test_configure_applies_the_settings_costs_to_new_hashes_and_the_dummy(own_pool: None) -> None:
    passwords.configure(Settings(password_hash_memory_kib=47104, password_hash_time_cost=1, password_hash_threads=3))

    assert passwords._hasher.hash(PASSWORD).startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert passwords._DUMMY_HASH.startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert passwords._pool.threads == 3


async def test_hashes_of_other_costs_still_verify_and_need_a_rehash(production_costs: None) -> None:
    older = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    argon2i = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I).hash(PASSWORD)
    current = await passwords.hash_password(PASSWORD)

    for stored in (LIBRARY_DEFAULT_HASH, older, argon2i):
        assert await passwords.verify_password(stored, PASSWORD) is True
        assert passwords.needs_rehash(stored) is True
    assert await passwords.verify_password(current, PASSWORD) is True
    assert passwords.needs_rehash(current) is False
    assert await passwords.verify_password(older, "wrong") is False


async def test_hashing_never_starves_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Costly hashes (~0.1 s each here), more than the pool has threads: were the GIL held
    # during a hash, or the loop's thread denied a core, a tick would wait a whole hash.
    hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    started = time.perf_counter()
    hasher.hash(PASSWORD)
    one_hash = time.perf_counter() - started
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await asyncio.gather(*(passwords.hash_password(PASSWORD) for _ in range(max(4, 2 * passwords._pool.threads))))
    stop.set()
    await ticking

    assert len(gaps) > 10
    assert max(gaps) < max(one_hash / 2, 0.02), (max(gaps), one_hash)


async def test_no_more_calls_run_at_once_than_the_pool_has_threads() -> None:
    pool = HashingPool(threads=2, queue=10)
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.03)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(pool.run(work) for _ in range(8)))
    finally:
        pool.shutdown()

    assert most == 2


async def test_a_call_past_the_queue_fails_at_once_and_a_slot_frees_when_a_call_ends() -> None:
    pool = HashingPool(threads=1, queue=2)
    release = threading.Event()
    try:
        admitted = [asyncio.create_task(pool.run(release.wait, 10)) for _ in range(3)]  # 1 running, 2 waiting
        await asyncio.sleep(0.05)

        with pytest.raises(HashingBusyError) as refused:
            await pool.run(time.sleep, 0)
        release.set()
        assert await asyncio.gather(*admitted) == [True, True, True]
        assert await pool.run(lambda: "admitted again") == "admitted again"
    finally:
        release.set()
        pool.shutdown()
    assert isinstance(refused.value, RateLimitedError)
    assert refused.value.extensions == {"code": "FORBIDDEN", "reason": "RATE_LIMITED", "retryAfter": 1}


async def test_a_waiting_call_cancelled_frees_its_slot_but_a_running_one_keeps_it_until_done() -> None:
    pool = HashingPool(threads=1, queue=1)
    release = threading.Event()
    try:
        running = asyncio.create_task(pool.run(release.wait, 10))
        waiting = asyncio.create_task(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        queued = asyncio.create_task(pool.run(lambda: "queued"))  # the waiting call's slot is free again
        await asyncio.sleep(0.01)
        running.cancel()  # its thread still works: the slot stays taken
        await asyncio.gather(running, return_exceptions=True)
        with pytest.raises(HashingBusyError):
            await pool.run(time.sleep, 0)
        release.set()
        assert await queued == "queued"
    finally:
        release.set()
        pool.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
async def test_hashing_threads_run_at_a_lower_priority_than_the_event_loop() -> None:
    def own_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    pool = HashingPool(threads=1, queue=0)
    try:
        hashing = await pool.run(own_niceness)
    finally:
        pool.shutdown()

    assert hashing == min(19, own_niceness() + passwords.HASHING_NICENESS)
