"""Bringing a user's stored hash up to today's Argon2 costs when they prove their password.

A rehash is not a password change: the password is the same, so no session of the user ends. It is
written only while the stored hash is still the one proven, so a password change meanwhile wins.
Callers: a login (after its session is made, see AuthService.login) and any other password proof.
"""

from __future__ import annotations

import logging

from tortoise.exceptions import BaseORMException

from models import User
from server.services.passwords import HashingBusyError, hash_password, needs_rehash, verify_password

logger = logging.getLogger(__name__)


async def upgrade_password_hash(user: User, password: str) -> bool:
    """Store a hash of `password` at today's costs when `user.password_hash` (which `password` was just
    proven against) was made with others; True when one was stored (`user` then carries it).

    When the hashing queue is full it is skipped, and a failure to store it is logged and ignored: the
    proof stands (the caller may already have made a session on it), and the next proof tries again.
    """
    proven = user.password_hash
    if proven is None or not needs_rehash(proven):
        return False
    try:
        upgraded = await hash_password(password)
    except HashingBusyError:
        return False
    try:
        stored = await User.filter(id=user.id, password_hash=proven).update(password_hash=upgraded)
    except BaseORMException as error:
        logger.warning("could not store the upgraded password hash of user %s: %s", user.id, type(error).__name__)
        return False
    if stored:
        user.password_hash = upgraded
    return stored > 0


async def proven_after_upgrade(user: User, password: str) -> User | None:
    """The user as stored now, if `password` (proven against `user`, read earlier) still holds for it and
    nothing else that a login checks changed: for a login that lost its credential check to another
    login's upgrade of the same hash. None when the password or the verification changed, or the user
    is gone.
    """
    current = await User.filter(id=user.id).first()
    if current is None or current.verified != user.verified or current.password_hash == user.password_hash:
        return None
    return current if await verify_password(current.password_hash, password) else None
