"""Session tokens: random, and stored or used as cache keys only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

#: A token longer than this was not issued by us; it is not even hashed.
MAX_TOKEN_LENGTH = 256


def new_session_token() -> str:
    """256 bits from the operating system's CSPRNG, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_plausible_token(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


def new_order_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))
