"""Argon2 password hashing, run in a worker thread so the event loop keeps serving."""

from __future__ import annotations

import os

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
#: Hashes at once: each takes ~64 MiB and a core, so more in flight only queue up in memory
#: and starve the event loop's own thread (anyio's default allows 40 threads).
_slots = anyio.CapacityLimiter(os.cpu_count() or 1)
#: Verified against when the user does not exist, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("no such user: this hash only makes failures take equal time")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, _utf8(password), limiter=_slots)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(_verify, password_hash, password, limiter=_slots)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, _utf8(password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _utf8(password: str) -> bytes:
    # A lone surrogate (JSON can carry one) is hashed like any other character instead of failing to encode.
    return password.encode("utf-8", "surrogatepass")
