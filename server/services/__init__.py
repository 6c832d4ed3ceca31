"""The services: all business logic, free of GraphQL and HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from server.cache.base import SessionCacheStrategy
from server.services.auth import AuthService
from server.services.cache_outages import CacheOutageBoard
from server.services.channel import ChannelService
from server.services.login_limiter import build_login_limiter
from server.services.order import OrderService
from server.services.role import RoleService
from server.services.session import SessionService
from server.services.user import UserService
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    sessions: SessionService
    orders: OrderService
    channels: ChannelService
    roles: RoleService
    users: UserService
    auth: AuthService

    @classmethod
    def build(
        cls, cache: SessionCacheStrategy, settings: Settings, outages: CacheOutageBoard | None = None
    ) -> Services:
        """`outages`: the board of a cache several instances share (see server/services/cache_outages.py)."""
        sessions = SessionService(cache, settings, outages=outages)
        limiter = build_login_limiter(cache, settings)
        return cls(
            sessions=sessions,
            orders=OrderService(sessions),
            channels=ChannelService(sessions),
            roles=RoleService(sessions),
            users=UserService(sessions, limiter),
            auth=AuthService(sessions, settings.require_verification, limiter),
        )


__all__ = ["AuthService", "ChannelService", "OrderService", "RoleService", "Services", "SessionService", "UserService"]
