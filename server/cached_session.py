"""The small, serializable form of a session that is cached and returned by the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.enums import Permission


@dataclass(frozen=True, slots=True)
class UserChannelPermissions:
    """The union of a user's role permissions on one channel."""

    id: int
    token: str
    code: str
    permissions: tuple[Permission, ...]


@dataclass(frozen=True, slots=True)
class CachedSessionUser:
    id: int
    identifier: str
    verified: bool
    channel_permissions: tuple[UserChannelPermissions, ...]

    def permissions_on(self, channel_id: int) -> frozenset[Permission]:
        for entry in self.channel_permissions:
            if entry.id == channel_id:
                return frozenset(entry.permissions)
        return frozenset()


@dataclass(frozen=True, slots=True)
class CachedSession:
    """A session as the cache holds it. `token` is the raw token of the caller and is never cached."""

    cache_expiry: float
    id: int
    token: str
    expires: datetime
    active_order_id: int | None = None
    authentication_strategy: str | None = None
    user: CachedSessionUser | None = None
    active_channel_id: int | None = None

    def without_token(self) -> CachedSession:
        return self.with_token("")

    def with_token(self, token: str) -> CachedSession:
        # Spelled out rather than dataclasses.replace(): this runs on every cache hit.
        return CachedSession(
            self.cache_expiry,
            self.id,
            token,
            self.expires,
            self.active_order_id,
            self.authentication_strategy,
            self.user,
            self.active_channel_id,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (dates as ISO strings); the token is left out on purpose."""
        user = self.user
        return {
            "cacheExpiry": self.cache_expiry,
            "id": self.id,
            "expires": self.expires.isoformat(),
            "activeOrderId": self.active_order_id,
            "authenticationStrategy": self.authentication_strategy,
            "activeChannelId": self.active_channel_id,
            "user": None
            if user is None
            else {
                "id": user.id,
                "identifier": user.identifier,
                "verified": user.verified,
                "channelPermissions": [
                    {"id": c.id, "token": c.token, "code": c.code, "permissions": [p.value for p in c.permissions]}
                    for c in user.channel_permissions
                ],
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], token: str = "") -> CachedSession:
        raw_user = data["user"]
        user = (
            None
            if raw_user is None
            else CachedSessionUser(
                id=raw_user["id"],
                identifier=raw_user["identifier"],
                verified=raw_user["verified"],
                channel_permissions=tuple(
                    UserChannelPermissions(
                        id=c["id"],
                        token=c["token"],
                        code=c["code"],
                        permissions=tuple(Permission(p) for p in c["permissions"]),
                    )
                    for c in raw_user["channelPermissions"]
                ),
            )
        )
        return cls(
            cache_expiry=data["cacheExpiry"],
            id=data["id"],
            token=token,
            expires=datetime.fromisoformat(data["expires"]),
            active_order_id=data["activeOrderId"],
            authentication_strategy=data["authenticationStrategy"],
            user=user,
            active_channel_id=data["activeChannelId"],
        )
