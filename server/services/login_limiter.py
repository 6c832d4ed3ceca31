"""Brute-force protection: login attempts limited per identifier and per client address.

Each attempt counts against two fixed windows of LOGIN_RATE_LIMIT (say 10 attempts per 3
minutes): one keyed by the SHA-256 digest of the identifier's normal form (server/services/identifiers.py,
invisible characters dropped, so every spelling of one account shares its window), one by the digest of the
client address (an IPv6 address counts as its /64, which one client usually holds whole). An
attempt over either limit is refused before any password is checked, with the seconds left in the
window. A successful login resets its identifier's window, never its address's.

Where the counters live is a strategy (server/cache/login_limiters.py), chosen by the factory in
server/cache/__init__.py: in the session cache's Redis, shared by every instance, or in this process.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from typing import Protocol

from server.services.errors import RateLimitedError
from server.services.identifiers import fold_identifier


def limit_keys(identifier: str, address: str | None) -> list[str]:
    """The counters one attempt counts against: its identifier's and, when known, its address's."""
    keys = ["id:" + _digest(fold_identifier(identifier))]
    if address:
        keys.append("ip:" + _digest(_address_group(address)))
    return keys


def identifier_key(identifier: str) -> str:
    return limit_keys(identifier, None)[0]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _address_group(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginLimiter(Protocol):
    async def attempt(self, keys: Sequence[str]) -> float | None:
        """Count one attempt against every key: None if allowed, else seconds until one is allowed."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the attempts counted against `key`."""
        ...


async def check_login_limit(limiter: LoginLimiter | None, identifier: str, client_address: str | None) -> None:
    """Count one password attempt for `identifier` from `client_address`; RateLimitedError when over the limit."""
    if limiter is None:
        return
    retry_after = await limiter.attempt(limit_keys(identifier, client_address))
    if retry_after is not None:
        raise RateLimitedError(retry_after)
